#!/usr/bin/env bash
# Install, from Debian's packages, what the tests need and a new machine may lack (`make deps`;
# `make test` and `make demo` run it first). Root is needed only when something is missing.
#   * PostgreSQL, Redis: the engine integration tests start a real primary + replica and a Redis
#     Cluster on loopback; Prometheus and promtool: the advisor and alert-rule tests;
#   * the kind tier: Debian's docker.io for the project's own Docker daemon, iptables for its
#     FORWARD chain, jq for the runtime wrapper, debootstrap for the offline base images, a static
#     C toolchain for the pod sandbox binary;
#   * python3-venv for the project's virtual environment.
# Go (>= 1.24, to build Kubernetes from its modules) is not Debian's: it must be installed already.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null; }
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
have make || need+=(make)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || have initdb || need+=(postgresql)
{ have redis-server && have redis-cli; } || need+=(redis-server)
{ have prometheus && have promtool; } || need+=(prometheus)
have dockerd || need+=(docker.io)
have iptables || need+=(iptables)
have jq || need+=(jq)
have debootstrap || need+=(debootstrap)
{ have gcc && [[ -f /usr/lib/x86_64-linux-gnu/libc.a ]]; } || need+=(gcc libc6-dev)
if ! go version 2>/dev/null | grep -Eq 'go1\.(2[4-9]|[3-9][0-9])'; then
  echo "[deps] Go >= 1.24 is required to build the local Kubernetes clusters (found: $(go version 2>&1))" >&2
  exit 1
fi
((${#need[@]})) || exit 0
if ((EUID != 0)); then
  echo "[deps] missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
echo "[deps] installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
