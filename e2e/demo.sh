#!/usr/bin/env bash
# `make demo`: the embedded engine answering learn/search, then the operator on the local cluster
# turning a BrainAICluster into a Ready, autoscaled engine tier.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=cluster/common.sh
source e2e/cluster/common.sh
NS=${BRAINAI_DEMO_NAMESPACE:-brain-ai-demo}

echo "==== 1. The engine on its embedded default (SQLite), over HTTP ===="
.venv/bin/brain-ai-engine demo

echo
echo "==== 2. A local Kubernetes cluster (first run builds it: tens of minutes) ===="
eval "$(e2e/cluster/up.sh)"
kubectl get nodes
kubectl api-resources --api-group=autoscaling

echo
echo "==== 3. The operator reconciling a BrainAICluster ===="
kubectl apply --server-side --force-conflicts -f crds/
kubectl wait --for=condition=Established crd/brainaiclusters.brainai.io --timeout=60s >/dev/null
log=$CACHE/demo-operator.log
.venv/bin/brain-ai-operator run --health-port 18080 --metrics-port 18081 >"$log" 2>&1 &
operator=$!
trap 'kill $operator 2>/dev/null || true' EXIT
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -n "$NS" -f examples/balanced.yaml
kubectl wait -n "$NS" --for=condition=Ready brainaicluster/brain-balanced --timeout=120s
kubectl get -n "$NS" brainaicluster,deployment,hpa,service,pdb
echo
echo "The cluster is still up:   eval \"\$(make -s cluster-up)\"; kubectl get bac -A"
echo "Stop it with:              make cluster-down        (operator log: $log)"
