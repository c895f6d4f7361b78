#!/usr/bin/env bash
# The project's Docker daemon: start it, stop it, or say where it is.
#
#   e2e/images/docker.sh start    # prints "running" (it already answered) or "started"
#   e2e/images/docker.sh stop     # stops the daemon this script started (and what it set up)
#   e2e/images/docker.sh status
#
# Images (`make images`) and the kind cluster (`make kind-up`) live in one private dockerd, apart
# from any other Docker on the machine: its own socket ($BRAINAI_DOCKER_HOST, default
# unix:///run/brain-ai/docker.sock), data-root under $BRAINAI_CACHE/docker (so built images
# survive between runs), exec-root, bridge brainai0 and address pools 10.242.0.0/16. Its settings:
#   * default runtime e2e/images/runc-wrapper: on VMs whose capability bounding set lacks
#     CAP_SYS_RESOURCE, privileged containers (kind's nodes) otherwise fail; elsewhere it is runc;
#   * "iptables": false, so it never rewrites the host's chains; one FORWARD chain (BRAINAI)
#     accepts traffic of its bridges and of kind's pod subnet instead (bridged frames cross
#     FORWARD under br_netfilter, whose policy another dockerd may have set to DROP);
#   * "dns" at its own bridge address, where nothing listens: names outside a cluster fail fast
#     and no query leaves the machine (CoreDNS in kind forwards to it).
# `start` installs Debian's docker.io (and iptables) when dockerd is missing; root is needed.
# Set BRAINAI_DOCKER_HOST to another daemon's address to use that one instead (it is then never
# started or stopped here; kind needs it to run privileged containers).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../cluster/common.sh
source "$here/../cluster/common.sh"
DIR=$CACHE/docker
RUN=/run/brain-ai
PIDFILE=$RUN/dockerd.pid
LOGF=$DIR/dockerd.log
WAIT=${BRAINAI_DOCKER_WAIT:-90}
BRIDGE=brainai0
BRIDGE_CIDR=10.241.0.1/24
POOLS=10.242.0.0/16
POD_SUBNET=10.244.0.0/16 # kind's default podSubnet
CHAIN=BRAINAI

log() { printf '[docker] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
((EUID == 0)) || die "the project's Docker daemon needs root"
answers() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }
private() { [[ $DOCKER_HOST == "unix://$RUN/docker.sock" ]]; }
ours() { [[ -s $PIDFILE ]] && [[ "$(ps -o comm= -p "$(cat "$PIDFILE")" 2>/dev/null)" == dockerd ]]; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v jq >/dev/null || missing+=(jq)
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]} (Debian)"
  mkdir -p "$DIR"
  if ! env DEBIAN_FRONTEND=noninteractive bash -c "apt-get update -qq \
      && apt-get install -y -qq --no-install-recommends ${missing[*]}" >"$DIR/apt.log" 2>&1; then
    tail -n 20 "$DIR/apt.log" >&2
    die "installing ${missing[*]} failed (log: $DIR/apt.log)"
  fi
  # The package's own daemon (systemd unit or socket) is not the project's: leave it stopped.
  systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
}

forward_rules() {
  iptables -N "$CHAIN" 2>/dev/null || iptables -F "$CHAIN"
  for net in "${BRIDGE_CIDR%.*}.0/24" "$POOLS" "$POD_SUBNET"; do
    iptables -A "$CHAIN" -s "$net" -j ACCEPT
    iptables -A "$CHAIN" -d "$net" -j ACCEPT
  done
  iptables -C FORWARD -j "$CHAIN" 2>/dev/null || iptables -I FORWARD 1 -j "$CHAIN"
}

start() {
  mkdir -p "$DIR"
  exec 8>"$DIR/.start.lock"
  flock 8 # two callers at once (a build and a cluster start): the second finds the first's daemon
  if answers; then
    log "daemon answers at $DOCKER_HOST ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    echo running
    return 0
  fi
  private || die "no Docker daemon answers at BRAINAI_DOCKER_HOST=$DOCKER_HOST"
  install_packages
  mkdir -p "$DIR/data" "$RUN" "$BIN"
  install -m 0755 "$here/runc-wrapper" "$BIN/brainai-runc"
  ip link show "$BRIDGE" >/dev/null 2>&1 || {
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
  }
  ip link set "$BRIDGE" up
  forward_rules
  # kubelets and containerds of three kind nodes share the host's inotify limits.
  (($(sysctl -n fs.inotify.max_user_instances) >= 512)) || sysctl -qw fs.inotify.max_user_instances=512
  (($(sysctl -n fs.inotify.max_user_watches) >= 524288)) || sysctl -qw fs.inotify.max_user_watches=524288
  cat >"$DIR/daemon.json" <<JSON
{
  "hosts": ["$DOCKER_HOST"],
  "data-root": "$DIR/data",
  "exec-root": "$RUN/exec",
  "pidfile": "$PIDFILE",
  "bridge": "$BRIDGE",
  "iptables": false,
  "ip-masq": false,
  "default-address-pools": [{"base": "$POOLS", "size": 24}],
  "dns": ["${BRIDGE_CIDR%/*}"],
  "runtimes": {"brainai-runc": {"path": "$BIN/brainai-runc"}},
  "default-runtime": "brainai-runc",
  "storage-driver": "overlay2",
  "log-opts": {"max-size": "20m"}
}
JSON
  local t0=$SECONDS launcher
  log "starting dockerd at $DOCKER_HOST (log: $LOGF)"
  # setsid: the daemon outlives this script and the make/pytest process that ran it; 8>&- 9>&-: it
  # must not hold this script's or the build scripts' locks.
  setsid dockerd --config-file "$DIR/daemon.json" >>"$LOGF" 2>&1 </dev/null 8>&- 9>&- &
  launcher=$!
  until answers; do
    if ! kill -0 "$launcher" 2>/dev/null; then
      tail -n 20 "$LOGF" >&2 || true
      die "dockerd exited (full log: $LOGF)"
    fi
    ((SECONDS - t0 < WAIT)) || die "dockerd did not answer within ${WAIT}s (log: $LOGF)"
    sleep 1
  done
  log "daemon up in $((SECONDS - t0))s ($(docker version --format '{{.Server.Version}}'))"
  echo started
}

stop() {
  private || { log "BRAINAI_DOCKER_HOST names another daemon: left alone"; return 0; }
  if ours; then
    local pid t0=$SECONDS
    pid=$(cat "$PIDFILE")
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do
      ((SECONDS - t0 < 60)) || { kill -KILL "$pid" 2>/dev/null || true; break; }
      sleep 0.5
    done
  fi
  # What the daemon leaves behind: its chain, bridges (kind's network bridges are br-* in our
  # pools), the network namespace mount under its exec-root.
  iptables -D FORWARD -j "$CHAIN" 2>/dev/null || true
  iptables -F "$CHAIN" 2>/dev/null && iptables -X "$CHAIN" 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  local br
  for br in $(ip -o -4 addr show | awk -v p="${POOLS%.*.*}." '$2 ~ /^br-/ && index($4, p) == 1 {print $2}'); do
    ip link del "$br" 2>/dev/null || true
  done
  umount "$RUN"/exec/netns/* 2>/dev/null || true
  rm -rf "$RUN"
  log "stopped"
}

case ${1:-start} in
  start) start ;;
  stop) stop ;;
  status) docker info --format '{{.ServerVersion}} runtime={{.DefaultRuntime}} cgroup={{.CgroupDriver}}/v{{.CgroupVersion}}' ;;
  *) die "usage: $0 [start|stop|status]" ;;
esac
