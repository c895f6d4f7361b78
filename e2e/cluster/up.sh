#!/usr/bin/env bash
# Start the local cluster (or find it already running) and print how to use it.
#
# A real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) driven by
# `kwokctl --runtime binary` on 127.0.0.1, with kwok faking nodes, pod status and volumes, and
# metrics-server reading kwok's resource-usage metrics so an HPA sees CPU and memory.
# Progress goes to stderr; stdout ends with `export KUBECONFIG=...` and `export PATH=...`,
# so `eval "$(make -s cluster-up)"` prepares a shell.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=common.sh
source "$here/common.sh"

"$here/build.sh"

t0=$SECONDS
log() { printf '[cluster %3ds] %s\n' "$((SECONDS - t0))" "$*" >&2; }
kc() { kubectl --kubeconfig "$KUBECONFIG_PATH" "$@"; }
api_ready() { [[ -f $KUBECONFIG_PATH ]] && kc get --raw /readyz >/dev/null 2>&1; }

# A componentsPatches entry raising one component's client rate limits (nothing when CLIENT_QPS is empty).
client_rate() {
  [[ -n $CLIENT_QPS ]] || return 0
  printf -- '- name: %s\n  extraArgs:\n  - key: kube-api-qps\n    value: "%s"\n  - key: kube-api-burst\n    value: "%s"\n' \
    "$1" "$CLIENT_QPS" "$((CLIENT_QPS * 2))"
}

write_config() {
  local conf=$KWOK_WORKDIR/$CLUSTER_NAME.kwokctl.yaml
  mkdir -p "$KWOK_WORKDIR"
  cat >"$conf" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeVersion: $K8S_VERSION
  etcdVersion: ${ETCD_VERSION#v}
  kwokVersion: $KWOK_VERSION
  metricsServerVersion: ${METRICS_SERVER_VERSION#v}
  quietPull: true
  kubeAuthorization: true
  kubeAdmission: true
  enable: [metrics-server]
  cacheDir: $KWOK_WORKDIR/cache
  kubeApiserverBinary: $BIN/kube-apiserver
  kubeControllerManagerBinary: $BIN/kube-controller-manager
  kubeSchedulerBinary: $BIN/kube-scheduler
  kubectlBinary: $BIN/kubectl
  etcdBinary: $BIN/etcd
  kwokControllerBinary: $BIN/kwok
  metricsServerBinary: $BIN/metrics-server
  metricsServerManifests: [$CACHE/manifests/metrics-server-$METRICS_SERVER_VERSION]
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - key: service-cluster-ip-range
    value: $SERVICE_CIDR
- name: kube-controller-manager
  extraArgs:
  - key: horizontal-pod-autoscaler-sync-period
    value: 5s
  - key: concurrent-deployment-syncs
    value: "$CONTROLLER_CONCURRENCY"
  - key: concurrent-replicaset-syncs
    value: "$CONTROLLER_CONCURRENCY"
  - key: concurrent-statefulset-syncs
    value: "$CONTROLLER_CONCURRENCY"
  - key: concurrent-job-syncs
    value: "$CONTROLLER_CONCURRENCY"
$(client_rate kube-controller-manager)
$(client_rate kube-scheduler)
---
EOF
  cat "$CACHE/manifests/kwok-stages-$KWOK_VERSION.yaml" >>"$conf"
  echo "$conf"
}

create_cluster() {
  log "creating cluster $CLUSTER_NAME (kube $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)"
  kwokctl create cluster --name "$CLUSTER_NAME" --config "$(write_config)" --kubeconfig "" \
    --timeout 5m --wait 3m >&2
}

if api_ready; then
  log "cluster $CLUSTER_NAME already up"
elif [[ -d $CLUSTER_DIR ]]; then
  log "starting stopped cluster $CLUSTER_NAME"
  if ! kwokctl start cluster --name "$CLUSTER_NAME" >&2; then
    log "could not start it; recreating"
    kwokctl delete cluster --name "$CLUSTER_NAME" >&2 || true
    create_cluster
  fi
else
  create_cluster
fi

until api_ready; do
  ((SECONDS - t0 < 180)) || { log "API server did not become ready"; exit 1; }
  sleep 1
done

kc apply -f "$CACHE/manifests/kwok-storage-class-$KWOK_VERSION.yaml" >/dev/null
for i in $(seq 0 $((CLUSTER_NODES - 1))); do
  sed "s/NODE_NAME/kwok-node-$i/g; s/NODE_ZONE/zone-$((i % 3))/g; s/NODE_PODS/$NODE_PODS/g; \
    s/NODE_CPU/$NODE_CPU/g; s/NODE_MEMORY/$NODE_MEMORY/g" "$here/node.yaml"
  echo "---"
done | kc apply -f - >/dev/null
log "waiting for $CLUSTER_NODES nodes and the metrics API"
kc wait --for=condition=Ready node --all --timeout=120s >/dev/null
metrics_available() { kc wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout="$1" >/dev/null 2>&1; }
if ! metrics_available 45s; then
  # metrics-server exits for good when it starts before the API server answers (a race on a loaded
  # machine), and kwok does not restart it: restart the components once, the API server first.
  log "metrics API not available; restarting the cluster's components"
  kwokctl stop cluster --name "$CLUSTER_NAME" >&2
  kwokctl start cluster --name "$CLUSTER_NAME" >&2
  until api_ready; do
    ((SECONDS - t0 < 420)) || { log "API server did not come back"; exit 1; }
    sleep 1
  done
  metrics_available 120s \
    || { log "metrics API still not available: see $CLUSTER_DIR/logs/metrics-server.log"; exit 1; }
fi
log "cluster $CLUSTER_NAME ready: $(kc get nodes --no-headers | wc -l) nodes, API $(kc config view --minify -o jsonpath='{.clusters[0].cluster.server}')"

echo "export KUBECONFIG=$KUBECONFIG_PATH"
echo "export PATH=$BIN:\$PATH"
