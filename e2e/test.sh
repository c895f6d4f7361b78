#!/usr/bin/env bash
# `make test`: every test, in two runs at once. The unit, engine integration and kwok end-to-end
# tests start right away (output in a log, printed when both runs are done); the kind cluster
# starts beside them, and the end-to-end suite then runs on it (real pods), printing as it goes.
# After the local tests, in the same background run, the load test's short variant prints its figures.
# The kind cluster and the project's Docker daemon are stopped at the end unless they were running
# before (or BRAINAI_KEEP_CLUSTER=1). Exits non-zero when either run failed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=kind/common.sh
source e2e/kind/common.sh
mkdir -p "$CACHE/logs"
up_log=$CACHE/logs/kind-up.log
local_log=$CACHE/logs/test-local.log

if ! KUBECONFIG=$KIND_KUBECONFIG kubectl get --raw /readyz >/dev/null 2>&1 && [[ -z ${BRAINAI_KEEP_CLUSTER:-} ]]; then
  trap 'e2e/kind/down.sh >/dev/null 2>&1 || true' EXIT
fi
# Builds first, the images (mostly downloads and disk) beside the Go binaries (CPU).
echo "[test] building the images in the background (log: $CACHE/logs/images-build.log)"
e2e/images/build.sh >/dev/null 2>"$CACHE/logs/images-build.log" &
images=$!
e2e/cluster/build.sh node || exit 1
wait "$images" || { tail -n 20 "$CACHE/logs/images-build.log" >&2; exit 1; }
echo "[test] unit, engine integration and kwok end-to-end tests: running (log: $local_log)"
(
  .venv/bin/pytest -p no:cacheprovider
  rc=$?
  echo "[test] ==== make loadtest, short variant ===="
  .venv/bin/python -m e2e.load.local --short || rc=1
  exit $rc
) >"$local_log" 2>&1 &
local_run=$!
echo "[test] kind cluster: starting (log: $up_log)"
if ! e2e/kind/up.sh >/dev/null 2>"$up_log"; then
  echo "[test] the kind cluster did not start:" >&2
  tail -n 20 "$up_log" >&2
fi
echo "[test] the end-to-end suite on kind (real pods)"
BRAINAI_E2E_TIER=kind KUBECONFIG=$KIND_KUBECONFIG .venv/bin/pytest e2e -m "not images" --durations=20
kind_rc=$?
wait "$local_run"
local_rc=$?
echo
echo "[test] ==== unit, engine integration and kwok end-to-end tests ($local_log) ===="
cat "$local_log"
echo "[test] unit, integration and kwok: exit $local_rc; kind: exit $kind_rc"
((local_rc == 0 && kind_rc == 0))
