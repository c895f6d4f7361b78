#!/usr/bin/env bash
# Validate a kind cluster config offline with kind's own loader and validation (no Docker, no
# node image): builds e2e/kind/configcheck/main.go against the pinned kind module (cached in
# $BRAINAI_CACHE/bin/kind-config-check) and prints the parsed config as JSON on stdout.
#
#   e2e/kind/check-config.sh [CONFIG]    # default: e2e/kind/kind-config.yaml
#
# kind has no dry-run for `create cluster`; this runs the same encoding.Load + Validate that
# `kind create cluster --config` runs before it creates anything.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../cluster/versions.env
source "$here/../cluster/versions.env"
# shellcheck source=../cluster/common.sh
source "$here/../cluster/common.sh"
config=${1:-$here/kind-config.yaml}

export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOPATH=$CACHE/go
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOPROXY=${GOPROXY:-https://proxy.golang.org,direct}

tool=$BIN/kind-config-check
want="$KIND_VERSION $(sha256sum <"$here/configcheck/main.go" | cut -c1-16)"
if [[ ! -x $tool || "$(cat "$BIN/.kind-config-check.version" 2>/dev/null)" != "$want" ]]; then
  printf '[kind] building kind-config-check against sigs.k8s.io/kind %s\n' "$KIND_VERSION" >&2
  # A module path below sigs.k8s.io/kind/pkg/ may import kind's pkg/internal packages.
  dir=$CACHE/src/kind-configcheck-$KIND_VERSION
  mkdir -p "$dir" "$BIN" "$CACHE/logs"
  cp "$here/configcheck/main.go" "$dir/main.go"
  cat >"$dir/go.mod" <<EOM
module sigs.k8s.io/kind/pkg/brainaiconfigcheck

go 1.24.0

require sigs.k8s.io/kind $KIND_VERSION
EOM
  if ! (cd "$dir" && go mod tidy && go build -trimpath -ldflags '-s -w' -o "$tool" .) \
      >"$CACHE/logs/kind-config-check.log" 2>&1; then
    tail -n 30 "$CACHE/logs/kind-config-check.log" >&2
    exit 1
  fi
  echo "$want" >"$BIN/.kind-config-check.version"
fi
exec "$tool" "$config"
