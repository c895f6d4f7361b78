#!/usr/bin/env bash
# Make a Docker daemon available, or stop the one this script started.
#
#   e2e/images/docker.sh start   # prints "running" (a daemon already answered) or "started"
#   e2e/images/docker.sh stop    # stops only a dockerd this script started (pid file), else no-op
#
# `start` installs Debian's docker.io when dockerd is missing (root or sudo needed), then runs
# dockerd in the background, detached from the caller, logging to $BRAINAI_CACHE/docker/dockerd.log,
# and waits until `docker info` answers. Nothing here needs --privileged containers (which fail on
# VMs whose capability bounding set lacks CAP_SYS_RESOURCE).
set -euo pipefail

CACHE=${BRAINAI_CACHE:-$HOME/.cache/brain-ai}
DIR=$CACHE/docker
PIDFILE=$DIR/dockerd.pid
LOGF=$DIR/dockerd.log
WAIT=${BRAINAI_DOCKER_WAIT:-90}

log() { printf '[docker] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
as_root() {
  if ((EUID == 0)); then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}
answers() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }
ours() { [[ -s $PIDFILE ]] && [[ "$(ps -o comm= -p "$(cat "$PIDFILE")" 2>/dev/null)" == dockerd ]]; }

start() {
  if answers; then
    log "daemon answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    echo running
    return 0
  fi
  if ! command -v dockerd >/dev/null; then
    log "dockerd not found: installing Debian's docker.io"
    mkdir -p "$DIR"
    if ! as_root env DEBIAN_FRONTEND=noninteractive bash -c 'apt-get update -qq \
        && apt-get install -y -qq --no-install-recommends docker.io iptables' >"$DIR/apt.log" 2>&1; then
      tail -n 20 "$DIR/apt.log" >&2
      die "installing docker.io failed (log: $DIR/apt.log)"
    fi
  fi
  mkdir -p "$DIR"
  local t0=$SECONDS launcher
  log "starting dockerd (log: $LOGF)"
  # setsid: the daemon outlives this script and the make/pytest process that ran it.
  as_root setsid dockerd >>"$LOGF" 2>&1 </dev/null &
  launcher=$!
  until answers; do
    if ! kill -0 "$launcher" 2>/dev/null; then
      tail -n 20 "$LOGF" >&2 || true
      die "dockerd exited (full log: $LOGF)"
    fi
    ((SECONDS - t0 < WAIT)) || die "dockerd did not answer within ${WAIT}s (log: $LOGF)"
    sleep 1
  done
  # dockerd writes its own pid file; keep a copy so `stop` ends only the daemon started here.
  cat /var/run/docker.pid >"$PIDFILE" 2>/dev/null || as_root cat /var/run/docker.pid >"$PIDFILE"
  log "daemon up in $((SECONDS - t0))s ($(docker version --format '{{.Server.Version}}'))"
  echo started
}

stop() {
  if ! ours; then
    log "no dockerd started by this script is running"
    rm -f "$PIDFILE"
    return 0
  fi
  local pid t0=$SECONDS
  pid=$(cat "$PIDFILE")
  log "stopping dockerd (pid $pid)"
  as_root kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS - t0 < 30)) || { as_root kill -KILL "$pid" 2>/dev/null || true; break; }
    sleep 0.5
  done
  rm -f "$PIDFILE"
  log "dockerd stopped"
}

case ${1:-start} in
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 [start|stop]" ;;
esac
