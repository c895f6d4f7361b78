#!/usr/bin/env bash
# Stop the local cluster and remove its state; nothing it started keeps running.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"

if [[ -d $CLUSTER_DIR ]] && command -v kwokctl >/dev/null; then
  echo "[cluster] deleting cluster $CLUSTER_NAME" >&2
  kwokctl delete cluster --name "$CLUSTER_NAME" >&2 || true
fi
rm -f "$KWOK_WORKDIR/$CLUSTER_NAME.kwokctl.yaml"
# Anything still running from the cluster's directory or our binaries is a leftover: end it.
pattern="$CLUSTER_DIR/|$BIN/(etcd|kube-|kwok|metrics-server)"
if pgrep -f "$pattern" >/dev/null; then
  pkill -TERM -f "$pattern" || true
  sleep 2
  pkill -KILL -f "$pattern" || true
fi
if pgrep -af "$pattern" >&2; then
  echo "[cluster] processes above are still running" >&2
  exit 1
fi
rm -rf "$CLUSTER_DIR"
echo "[cluster] $CLUSTER_NAME is down" >&2
