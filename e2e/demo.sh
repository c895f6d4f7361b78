#!/usr/bin/env bash
# `make demo`: the embedded engine answering learn/search, then a BrainAICluster reconciled by the
# operator into engine pods that answer learn/search through their Service.
#
# Where Docker can run kind (root, the project's Docker daemon, privileged containers), the
# cluster is kind with real pods and the operator is the Helm chart's, from its image. Elsewhere
# it is the kwok cluster, whose pods only pretend to run: the operator then runs from this
# checkout and the engine answers from step 1 only. The script says which it uses.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=kind/common.sh
source e2e/kind/common.sh
NS=${BRAINAI_DEMO_NAMESPACE:-brain-ai-demo}
say() { printf '\n==== %s ====\n' "$*"; }

say "1. The engine on its embedded default (SQLite), over HTTP"
.venv/bin/brain-ai-engine demo

say "2. A local Kubernetes cluster (the first run builds it offline: tens of minutes)"
tier=kind
if ! exports=$(e2e/kind/up.sh 2>"$CACHE/logs/demo-kind-up.log"); then
  tier=kwok
  echo "kind cannot run here ($(tail -n 1 "$CACHE/logs/demo-kind-up.log")):" \
    "using the kwok cluster, whose pods do not really run (full log: $CACHE/logs/demo-kind-up.log)"
  exports=$(e2e/cluster/up.sh)
fi
eval "$exports"
echo "tier: $tier"
kubectl get nodes -o wide

say "3. The operator reconciling a BrainAICluster"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
# `kubectl wait` fails outright while a new CRD's conditions are still null: poll instead.
established() {
  [[ $(kubectl get crd brainaiclusters.brainai.io \
    -o jsonpath='{.status.conditions[?(@.type=="Established")].status}') == True ]]
}
for _ in $(seq 60); do established && break; sleep 1; done
established || { echo "the BrainAICluster CRD is not Established after 60 s" >&2; exit 1; }
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
if [[ $tier == kind ]]; then
  helm upgrade --install brain-ai-operator charts/brain-ai-operator -n brain-ai-system --create-namespace \
    --wait --timeout 5m
  kubectl -n brain-ai-system get pods -o wide
else
  log=$CACHE/demo-operator.log
  .venv/bin/brain-ai-operator run --health-port 18080 --metrics-port 18081 >"$log" 2>&1 &
  operator=$!
  trap 'kill $operator 2>/dev/null || true' EXIT
fi
# examples/balanced.yaml's shape at demo size: engines autoscaled on a shared PostgreSQL (a leader
# and one streaming replica) and a 3-node Redis Cluster, with requests small enough for a laptop.
kubectl apply -n "$NS" -f - <<'YAML'
apiVersion: brainai.io/v1alpha1
kind: BrainAICluster
metadata:
  name: brain-demo
spec:
  strategy: balanced
  autoscaling: {minReplicas: 2, maxReplicas: 4}
  engine:
    resources: {requests: {cpu: 100m, memory: 256Mi}}
  postgres:
    enabled: true
    readReplicas: 1
    resources: {requests: {cpu: 100m, memory: 256Mi}}
  redis:
    enabled: true
    masters: 3
    replicasPerMaster: 0
    resources: {requests: {cpu: 50m, memory: 64Mi}}
YAML
kubectl wait -n "$NS" --for=condition=Ready brainaicluster/brain-demo --timeout=420s
kubectl get -n "$NS" brainaicluster,deployment,statefulset,hpa,service,pdb,pods

if [[ $tier == kind ]]; then
  say "4. The engine pods answering learn/search through their Service, from a pod in the cluster"
  kubectl -n "$NS" run demo-client --image=brain-ai/engine:0.1.0 --image-pull-policy=IfNotPresent \
    --restart=Never --rm -i --quiet --command -- python3 - <<'PY'
import http.client, json, time, urllib.parse
# A new connection per call, so the Service spreads them over the engine pods: every pod serves
# the same PostgreSQL store, and a text learned on one is searchable on the others within a second.
def call(method, path, body=None):
    conn = http.client.HTTPConnection("brain-demo-engine", 8080, timeout=10)
    conn.request(method, "/api/v1" + path, json.dumps(body) if body else None, {"Content-Type": "application/json"})
    return json.loads(conn.getresponse().read())
for text in ["Machine learning is fascinating", "Kubernetes operators reconcile desired state"]:
    learned = call("POST", "/learn", {"text": text})
    print(f"POST /learn {text!r}: {learned['memories_stored']} memory, {learned['concepts_created']} concepts")
for _ in range(30):  # propagation to the other pods takes well under a second
    found = call("GET", "/memory/search?" + urllib.parse.urlencode({"query": "machine learning"}))
    if found["total"]:
        break
    time.sleep(0.1)
print(f"GET /memory/search?query=machine learning: {found['total']} hit(s), top: "
      f"{found['results'][0]['memory']['content']!r}")
PY
  echo
  echo "Real pods on kind:        kubectl -n $NS get pods -o wide   (with: eval \"\$(make -s kind-up)\")"
  echo "Stop everything with:     make kind-down"
else
  echo
  echo "The cluster is still up:  eval \"\$(make -s cluster-up)\"; kubectl get bac -A"
  echo "Stop it with:             make cluster-down        (operator log: $log)"
fi
