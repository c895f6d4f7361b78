#!/usr/bin/env bash
# `make test`: every test. The kind cluster starts in the background while the unit, engine
# integration and kwok end-to-end tests run; then the end-to-end suite runs again on kind (real
# pods), and the kind cluster and the project's Docker daemon are stopped at the end unless they
# were running before (or BRAINAI_KEEP_CLUSTER=1). Exits non-zero when either run failed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=kind/common.sh
source e2e/kind/common.sh
mkdir -p "$CACHE/logs"
up_log=$CACHE/logs/kind-up.log

was_up=0
KUBECONFIG=$KIND_KUBECONFIG kubectl get --raw /readyz >/dev/null 2>&1 && was_up=1
if ((!was_up)) && [[ -z ${BRAINAI_KEEP_CLUSTER:-} ]]; then
  trap 'e2e/kind/down.sh >/dev/null 2>&1 || true' EXIT
fi
echo "[test] starting the kind cluster in the background (log: $up_log)"
e2e/kind/up.sh >/dev/null 2>"$up_log" &
kind_up=$!

.venv/bin/pytest
local_rc=$?

if ! wait "$kind_up"; then
  echo "[test] the kind cluster did not start:" >&2
  tail -n 20 "$up_log" >&2
fi
echo "[test] the end-to-end suite on kind (real pods)"
BRAINAI_E2E_TIER=kind KUBECONFIG=$KIND_KUBECONFIG .venv/bin/pytest e2e -m "not images" --durations=20
kind_rc=$?
echo "[test] unit, integration and kwok: exit $local_rc; kind: exit $kind_rc"
((local_rc == 0 && kind_rc == 0))
