#!/usr/bin/env bash
# Start the kind cluster with real pods (or find it running) and print how to use it: `make kind-up`.
#
#   1. the project's Docker daemon (e2e/images/docker.sh) and, built offline and cached, the
#      project's images (e2e/images/build.sh: brain-ai/engine, brain-ai/operator,
#      brain-ai/postgres, brain-ai/redis) and the node image (e2e/kind/node-image.sh);
#   2. `kind create cluster` from e2e/kind/kind-config.yaml (1 control-plane, 2 workers in two
#      zones); the control plane takes workloads too, since each node offers only the host's CPUs;
#   3. metrics-server (the pinned release's manifests; kubelets serve self-signed certificates,
#      hence --kubelet-insecure-tls), so `kubectl top` and the HPA read real kubelet usage;
#   4. `kind load` of the project's images (a no-op for images the nodes already hold: the data
#      images come with the node image).
# Progress on stderr; stdout ends with `export KUBECONFIG=...` and `export PATH=...`, so
# `eval "$(make -s kind-up)"` prepares a shell. Environment: KIND_NODE_IMAGE (another node image),
# BRAINAI_DOCKER_HOST (another Docker daemon, able to run privileged containers).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
mkdir -p "$KIND_DIR" "$CACHE/logs"
# One start at a time: a second caller waits, then finds the cluster up.
exec 9>"$KIND_DIR/.up.lock"
flock 9
t0=$SECONDS
log() { printf '[kind %4ds] %s\n' "$((SECONDS - t0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
export KUBECONFIG=$KIND_KUBECONFIG
kc() { kubectl "$@"; }

"$here/../cluster/build.sh" node
"$here/../images/docker.sh" start >/dev/null
"$here/../images/build.sh"
node_image=${KIND_NODE_IMAGE:-$("$here/node-image.sh")}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/operator/pyproject.toml" | head -n1)
images=("brain-ai/engine:$version" "brain-ai/operator:$version" brain-ai/postgres:15 brain-ai/redis:7.0)

if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER" && kc get --raw /readyz >/dev/null 2>&1; then
  log "kind cluster $KIND_CLUSTER already up"
else
  kind delete cluster --name "$KIND_CLUSTER" >/dev/null 2>&1 || true
  config=$KIND_DIR/kind-config.yaml
  sed "s|^\(    image: \).*|\1$node_image|" "$here/kind-config.yaml" >"$config"
  log "creating kind cluster $KIND_CLUSTER (node image $node_image)"
  if ! kind create cluster --config "$config" --name "$KIND_CLUSTER" --kubeconfig "$KIND_KUBECONFIG" \
      --wait 5m >"$CACHE/logs/kind-create.log" 2>&1; then
    tail -n 20 "$CACHE/logs/kind-create.log" >&2
    kind export logs "$CACHE/logs/kind-create-failed" --name "$KIND_CLUSTER" >/dev/null 2>&1 || true
    kind delete cluster --name "$KIND_CLUSTER" >/dev/null 2>&1 || true
    die "kind create failed (log: $CACHE/logs/kind-create.log, node logs: $CACHE/logs/kind-create-failed)"
  fi
  log "created in $((SECONDS - t0))s"
  kc taint nodes -l node-role.kubernetes.io/control-plane node-role.kubernetes.io/control-plane:NoSchedule- >/dev/null
fi

if ! kc get apiservice v1beta1.metrics.k8s.io >/dev/null 2>&1; then
  log "installing metrics-server $METRICS_SERVER_VERSION"
  kc kustomize "$CACHE/manifests/metrics-server-$METRICS_SERVER_VERSION" \
    | sed "s|image: .*metrics-server:.*|image: registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION|" \
    | kc apply -f - >/dev/null
  kc -n kube-system patch deployment metrics-server --type=json -p '[
    {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--kubelet-insecure-tls"},
    {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--metric-resolution=15s"}]' >/dev/null
fi

log "loading ${images[*]}"
kind load docker-image --name "$KIND_CLUSTER" "${images[@]}" >"$CACHE/logs/kind-load.log" 2>&1 \
  || { tail -n 20 "$CACHE/logs/kind-load.log" >&2; die "kind load failed"; }
kc wait --for=condition=Ready nodes --all --timeout=180s >/dev/null
kc -n kube-system rollout status deployment/metrics-server --timeout=180s >/dev/null
kc wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=180s >/dev/null
log "kind cluster $KIND_CLUSTER ready: $(kc get nodes --no-headers | wc -l) nodes, API $(kc config view --minify -o jsonpath='{.clusters[0].cluster.server}')"

echo "export KUBECONFIG=$KIND_KUBECONFIG"
echo "export DOCKER_HOST=$DOCKER_HOST"
echo "export PATH=$BIN:\$PATH"
