#!/usr/bin/env bash
# The end-to-end suite on a kind cluster: real nodes, real pods, the real images (`make e2e-kind`).
#
#   1. builds (or reuses) kind, kubectl and helm (e2e/cluster/build.sh) and validates
#      e2e/kind/kind-config.yaml with kind's own config code (e2e/kind/check-config.sh);
#   2. makes sure Docker runs (e2e/images/docker.sh) and the pinned node image is present;
#   3. creates the kind cluster (1 control-plane + 2 workers), builds the images (`make images`,
#      e2e/images/build.sh) and `kind load`s brain-ai/engine and brain-ai/operator into it;
#   4. installs the Helm chart charts/brain-ai-operator (image pull policy Never: the loaded image);
#   5. runs the e2e suite (pytest e2e) with KUBECONFIG pointing at kind; the suite runs its own
#      operator process, so the chart's operator is scaled to 0 meanwhile and back to 1 after;
#   6. applies each examples/*.yaml and waits for the BrainAICluster to be Ready, then deletes it;
#   7. deletes the kind cluster (unless BRAINAI_KEEP_KIND=1, or it existed before this script).
#
# Needs: root (or sudo) for Docker; a Docker daemon able to run kind's node containers, which are
# privileged (on VMs whose capability bounding set lacks CAP_SYS_RESOURCE, privileged containers
# fail: use another machine); network access to pull the node image kindest/node (Docker Hub)
# unless it is already loaded, and the images the examples use (postgres, redis) from inside the
# nodes. It fails early, with a message, when the node image cannot be had.
#
# Environment: KIND_NODE_IMAGE (use this node image instead of the pinned one, e.g. one you
# `docker load`ed), BRAINAI_KIND_TIMEOUT (per wait, default 10m), BRAINAI_KEEP_KIND=1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../cluster/versions.env
source "$here/../cluster/versions.env"
# shellcheck source=../cluster/common.sh
source "$here/../cluster/common.sh"

t_all=$SECONDS
log() { printf '[kind %4ds] %s\n' "$((SECONDS - t_all))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
TIMEOUT=${BRAINAI_KIND_TIMEOUT:-10m}
KIND_DIR=$CACHE/kind
KUBECONFIG_KIND=$KIND_DIR/kubeconfig
RELEASE=brain-ai-operator
RELEASE_NS=brain-ai-system
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml" | head -n1)
ENGINE_IMAGE=brain-ai/engine:$VERSION
OPERATOR_IMAGE=brain-ai/operator:$VERSION
PYTEST=$root/.venv/bin/pytest
mkdir -p "$KIND_DIR" "$CACHE/logs"

# --- 1. tools and config ---------------------------------------------------------------------
"$here/../cluster/build.sh"
[[ -d $root/charts/brain-ai-operator ]] || die "charts/brain-ai-operator is missing"
[[ -x $PYTEST ]] || die "no $PYTEST: run make setup"
config=$KIND_DIR/kind-config.yaml
if [[ -n ${KIND_NODE_IMAGE:-} ]]; then
  sed "s|image: kindest/node:.*|image: $KIND_NODE_IMAGE|" "$here/kind-config.yaml" >"$config"
else
  cp "$here/kind-config.yaml" "$config"
fi
log "validating $config with kind $KIND_VERSION's config loader"
summary=$("$here/check-config.sh" "$config")
name=$(sed -n 's/^  "name": "\(.*\)",$/\1/p' <<<"$summary")
node_image=$(sed -n 's/^      "image": "\(.*\)",*$/\1/p' <<<"$summary" | sort -u)
[[ $(wc -l <<<"$node_image") == 1 ]] || die "the nodes use different images: $node_image"

# --- 2. Docker and the node image ------------------------------------------------------------
"$here/../images/docker.sh" start >/dev/null
if docker image inspect "$node_image" >/dev/null 2>&1; then
  log "node image $node_image present"
else
  log "pulling node image $node_image"
  if ! timeout 900 docker pull "$node_image" >"$CACHE/logs/kind-node-image.log" 2>&1; then
    tail -n 5 "$CACHE/logs/kind-node-image.log" >&2
    die "the kind node image $node_image is not available: this needs network access to Docker Hub \
(kindest/node), or the image loaded beforehand (docker load) and named with KIND_NODE_IMAGE=..."
  fi
fi

# kind's nodes are privileged containers: find out now rather than halfway through `kind create`.
if ! docker run --rm --privileged --network none --entrypoint true "$node_image" >"$CACHE/logs/kind-privileged.log" 2>&1; then
  tail -n 3 "$CACHE/logs/kind-privileged.log" >&2
  die "this Docker daemon cannot run privileged containers, which kind's nodes are (on VMs whose \
capability bounding set lacks CAP_SYS_RESOURCE runc fails with 'unable to apply caps')"
fi

# --- 3. cluster and images -------------------------------------------------------------------
export KUBECONFIG=$KUBECONFIG_KIND
created=0
if kind get clusters 2>/dev/null | grep -qx "$name"; then
  log "kind cluster $name exists: reusing it (and leaving it)"
  kind export kubeconfig --name "$name" --kubeconfig "$KUBECONFIG_KIND" >&2
else
  created=1
fi
cleanup() {
  local rc=$?
  if ((created)) && [[ -z ${BRAINAI_KEEP_KIND:-} ]]; then
    log "deleting kind cluster $name"
    kind delete cluster --name "$name" --kubeconfig "$KUBECONFIG_KIND" >&2 || true
  fi
  if ((rc == 0)); then log "done in $((SECONDS - t_all))s"; else log "FAILED (exit $rc) after $((SECONDS - t_all))s"; fi
}
trap cleanup EXIT
if ((created)); then
  log "creating kind cluster $name (1 control-plane, 2 workers)"
  kind create cluster --config "$config" --name "$name" --kubeconfig "$KUBECONFIG_KIND" --wait 5m >&2
fi
kubectl get nodes -o wide >&2

make -C "$root" --no-print-directory images
log "loading $ENGINE_IMAGE and $OPERATOR_IMAGE into the nodes"
kind load docker-image --name "$name" "$ENGINE_IMAGE" "$OPERATOR_IMAGE" >&2

# --- 4. the chart ----------------------------------------------------------------------------
log "helm upgrade --install $RELEASE (namespace $RELEASE_NS)"
helm upgrade --install "$RELEASE" "$root/charts/brain-ai-operator" -n "$RELEASE_NS" --create-namespace \
  --set image.repository=brain-ai/operator --set image.tag="$VERSION" --set image.pullPolicy=Never \
  --wait --timeout "$TIMEOUT" >&2
operator_deploy=(deployment --namespace "$RELEASE_NS" --selector "app.kubernetes.io/instance=$RELEASE")
kubectl get pods -n "$RELEASE_NS" -o wide >&2

# --- 5. the e2e suite ------------------------------------------------------------------------
# The suite starts its own operator per module: keep the chart's replica out of its way.
log "scaling the chart's operator to 0 while the e2e suite runs its own"
kubectl scale "${operator_deploy[@]}" --replicas=0 >&2
log "pytest e2e (KUBECONFIG=$KUBECONFIG_KIND)"
suite_rc=0
(cd "$root" && "$PYTEST" e2e -m "not images" -p no:cacheprovider) || suite_rc=$?
kubectl scale "${operator_deploy[@]}" --replicas=1 >&2
kubectl wait "${operator_deploy[@]}" --for=condition=Available --timeout "$TIMEOUT" >&2

# --- 6. the examples, reconciled by the operator running from its image ------------------------
examples_rc=0
ns=brain-ai-examples
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >&2
for example in "$root"/examples/*.yaml; do
  cr=$(kubectl apply -n "$ns" -f "$example" -o name)
  log "applied $(basename "$example"): waiting for $cr to be Ready"
  if kubectl wait -n "$ns" "$cr" --for=condition=Ready --timeout "$TIMEOUT" >&2; then
    log "  $cr Ready"
  else
    examples_rc=1
    log "  $cr NOT Ready within $TIMEOUT"
    kubectl get -n "$ns" "$cr" -o yaml >&2 || true
    kubectl get pods -n "$ns" -o wide >&2 || true
  fi
  kubectl delete -n "$ns" -f "$example" --wait=true --timeout "$TIMEOUT" >&2 || true
done

((suite_rc == 0)) || die "the e2e suite failed on kind (exit $suite_rc)"
((examples_rc == 0)) || die "not every example became Ready"
log "e2e suite and every example passed on kind"
