#!/usr/bin/env bash
# Delete the kind cluster and stop the project's Docker daemon: `make kind-down`. Nothing the kind
# tier started keeps running; the images and the node image stay in the daemon's data-root
# ($BRAINAI_CACHE/docker), so the next `make kind-up` starts in about a minute.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
if docker info >/dev/null 2>&1 && kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  echo "[kind] deleting cluster $KIND_CLUSTER" >&2
  kind delete cluster --name "$KIND_CLUSTER" --kubeconfig "$KIND_KUBECONFIG" >&2
fi
rm -f "$KIND_KUBECONFIG"
"$here/../images/docker.sh" stop
left=$(pgrep -a -f "dockerd --config-file $CACHE/docker|containerd-shim.*brain-ai" || true)
if [[ -n $left ]]; then
  echo "[kind] still running:" >&2
  echo "$left" >&2
  exit 1
fi
echo "[kind] $KIND_CLUSTER is down" >&2
