#!/usr/bin/env bash
# Build the engine and operator images offline: `make images`.
#
#   1. the project's Docker daemon (e2e/images/docker.sh: installs docker.io, starts it if needed);
#   2. base images made with debootstrap from the host's apt mirror and `docker import`ed, since
#      no registry image can be pulled here (each skipped when it exists):
#      brain-ai/base:bookworm (minbase + python3 3.11 + venv) for the engine and operator, and
#      brain-ai/data-base:bookworm (minbase + Debian's postgresql-15, patroni, pgbackrest and
#      redis-server) for the data images;
#   3. a wheelhouse of the project's dependencies built on the host (pip wheel, from PyPI) in
#      $BRAINAI_CACHE/wheelhouse; skipped while the dependencies in the pyproject.toml files are unchanged;
#   4. `docker build --target operator|engine` from a staged context (sources + wheelhouse) with
#      BASE_IMAGE=brain-ai/base:bookworm and PIP_NO_INDEX=1: the build itself fetches nothing;
#   5. brain-ai/postgres:15 and brain-ai/redis:7.0 from e2e/images/data/Dockerfile on the data base.
#
# The classic builder is used unless the buildx plugin is installed (Debian bookworm has no
# docker-buildx package); the Dockerfile works with both. Progress goes to stderr, full logs to
# $BRAINAI_CACHE/logs/. Environment: BRAINAI_BASE_IMAGE (use another base, e.g. a pulled
# python:3.11-slim-bookworm), DEBIAN_MIRROR (default: the host's apt source for bookworm).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../cluster/common.sh
source "$here/../cluster/common.sh"
LOGS=$CACHE/logs
WHEELHOUSE=$CACHE/wheelhouse
WORK=$CACHE/images
SUITE=bookworm
BASE_IMAGE=${BRAINAI_BASE_IMAGE:-brain-ai/base:$SUITE}
DATA_BASE_IMAGE=brain-ai/data-base:$SUITE
POSTGRES_IMAGE=brain-ai/postgres:15
REDIS_IMAGE=brain-ai/redis:7.0
PYTHON=${PYTHON:-$root/.venv/bin/python}
[[ -x $PYTHON ]] || PYTHON=python3
mkdir -p "$LOGS" "$WORK"
# One build at a time: they share the staged context and the tags.
exec 9>"$WORK/.build.lock"
flock 9

t_all=$SECONDS
log() { printf '[images %4ds] %s\n' "$((SECONDS - t_all))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# logged NAME CMD...: run CMD with its output in $LOGS/NAME.log; on failure show the tail.
logged() {
  local name=$1; shift
  if ! "$@" >"$LOGS/$name.log" 2>&1; then
    tail -n 40 "$LOGS/$name.log" >&2
    die "$name failed (full log: $LOGS/$name.log)"
  fi
}
# $1: a Python statement over d, the parsed pyproject.toml of the distribution in $2 (common, engine, operator).
pyproject() { "$PYTHON" -c "import tomllib, sys; d = tomllib.load(open('$root/$2/pyproject.toml', 'rb')); $1"; }

VERSION=$(pyproject "print(d['project']['version'])" operator)
ENGINE_IMAGE=${BRAINAI_ENGINE_IMAGE:-brain-ai/engine:$VERSION}
OPERATOR_IMAGE=${BRAINAI_OPERATOR_IMAGE:-brain-ai/operator:$VERSION}

# --- 1. Docker -------------------------------------------------------------------------------
"$here/docker.sh" start >/dev/null

# --- 2. base image ---------------------------------------------------------------------------
# shellcheck source=rootfs.sh
source "$here/rootfs.sh"

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE present"
elif [[ -n ${BRAINAI_BASE_IMAGE:-} ]]; then
  die "base image $BASE_IMAGE not found (BRAINAI_BASE_IMAGE names an image that must exist)"
else
  t0=$SECONDS
  tarball=$(rootfs_tarball python3,python3-venv,ca-certificates)
  py=$(gzip -dc "$tarball" | tar -tf - ./usr/bin/ 2>/dev/null | sed -n 's|^\./usr/bin/python\(3\.[0-9]*\)$|\1|p' | head -n1)
  import_rootfs "$BASE_IMAGE" "$tarball" --change 'CMD ["python3"]' \
    --change "LABEL org.opencontainers.image.title=brain-ai-base org.opencontainers.image.base.name=debian:$SUITE io.brainai.python=$py"
  log "base image ready in $((SECONDS - t0))s"
fi

# --- 3. wheelhouse ---------------------------------------------------------------------------
# The wheels must match the image's Python (same minor version, glibc-based Linux).
host_py=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
base_py=$(docker image inspect "$BASE_IMAGE" --format '{{index .Config.Labels "io.brainai.python"}}' 2>/dev/null || true)
[[ -z $base_py || $base_py == "<no value>" ]] && base_py=$(docker run --rm --network none "$BASE_IMAGE" \
  python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[[ $host_py == "$base_py" ]] || die "host Python $host_py ($PYTHON) differs from the image's $base_py: \
set PYTHON to a python$base_py so the wheelhouse fits the image"

requirements=$WORK/requirements.txt
{
  for dist in common engine operator; do
    pyproject "print('\n'.join(d['project']['dependencies']))" "$dist"
    pyproject "print('\n'.join(r for rs in d['project'].get('optional-dependencies', {}).values() for r in rs))" "$dist"
    pyproject "print('\n'.join(d['build-system']['requires']))" "$dist"
  done | grep -v '^brain-ai-' | sort -u
} >"$requirements.new"
key="python$host_py $(sha256sum <"$requirements.new" | cut -c1-16)"
if [[ -f $WHEELHOUSE/.key && "$(cat "$WHEELHOUSE/.key")" == "$key" ]]; then
  log "wheelhouse cached ($(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels, $key)"
else
  t0=$SECONDS
  log "building the wheelhouse with $PYTHON ($host_py) into $WHEELHOUSE"
  rm -rf "$WHEELHOUSE.tmp"
  logged pip-wheel "$PYTHON" -m pip wheel --disable-pip-version-check --wheel-dir "$WHEELHOUSE.tmp" \
    --requirement "$requirements.new"
  # Environment markers can name the patch version (redis wants async-timeout below 3.11.3, and
  # bookworm's python3 is 3.11.2): let the image's own pip complete the wheelhouse, with every
  # version the host resolved pinned. Host network; the host CA bundle so TLS to the index works.
  for whl in "$WHEELHOUSE.tmp"/*.whl; do
    whl=${whl##*/}; IFS=- read -r name ver _ <<<"$whl"; echo "$name==$ver"
  done >"$WHEELHOUSE.tmp/constraints.txt"
  cp "$requirements.new" "$WHEELHOUSE.tmp/requirements.txt"
  ca=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
  log "completing the wheelhouse for the image's Python $(docker run --rm --network none "$BASE_IMAGE" \
    python3 -c 'import platform; print(platform.python_version())')"
  # The daemon's DNS is a dead address on purpose: this one step uses the host's resolver.
  logged pip-wheel-image docker run --rm --network host --user "$(id -u):$(id -g)" \
    -v /etc/resolv.conf:/etc/resolv.conf:ro \
    -v "$ca:/etc/ssl/certs/host-ca.crt:ro" -e PIP_CERT=/etc/ssl/certs/host-ca.crt \
    -e PIP_INDEX_URL -e PIP_EXTRA_INDEX_URL -e PIP_DEFAULT_TIMEOUT -e HOME=/tmp \
    -v "$WHEELHOUSE.tmp:/wheels" "$BASE_IMAGE" sh -c 'python3 -m venv /tmp/venv \
      && /tmp/venv/bin/pip wheel --disable-pip-version-check --find-links /wheels --wheel-dir /wheels \
         --constraint /wheels/constraints.txt --requirement /wheels/requirements.txt'
  rm -f "$WHEELHOUSE.tmp/constraints.txt" "$WHEELHOUSE.tmp/requirements.txt"
  rm -rf "$WHEELHOUSE"
  mv "$WHEELHOUSE.tmp" "$WHEELHOUSE"
  echo "$key" >"$WHEELHOUSE/.key"
  log "wheelhouse: $(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1) in $((SECONDS - t0))s"
fi
mv "$requirements.new" "$requirements"

# --- 4. images -------------------------------------------------------------------------------
# The classic builder cannot take a second (named) context, so the context is staged: the files
# the Dockerfile copies plus the wheelhouse, hard-linked when on the same filesystem.
ctx=$WORK/context
rm -rf "$ctx"
mkdir -p "$ctx"
cp -p "$root/Dockerfile" "$root/.dockerignore" "$root/pyproject.toml" "$ctx/"
tar -C "$root" --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' -cf - common engine operator \
  | tar -C "$ctx" -xf -
cp -al "$WHEELHOUSE" "$ctx/wheelhouse" 2>/dev/null || cp -a "$WHEELHOUSE" "$ctx/wheelhouse"

if docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=1
  builder=BuildKit
else
  export DOCKER_BUILDKIT=0
  builder="classic builder"
fi
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
created=$(git -C "$root" log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)
# A work tree with changes is not the commit: say so in the label.
[[ -n $(git -C "$root" status --porcelain -- Dockerfile pyproject.toml common engine operator 2>/dev/null) ]] \
  && revision+="-dirty"

for target in operator engine; do
  image=$OPERATOR_IMAGE
  [[ $target == engine ]] && image=$ENGINE_IMAGE
  t0=$SECONDS
  log "docker build --target $target -t $image ($builder, base $BASE_IMAGE)"
  logged "image-$target" docker build --target "$target" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg PIP_NO_INDEX=1 \
    --build-arg VERSION="$VERSION" --build-arg REVISION="$revision" --build-arg CREATED="$created" \
    --tag "$image" "$ctx"
  size=$(docker image inspect "$image" --format '{{.Size}}')
  log "  $image built in $((SECONDS - t0))s ($((size / 1024 / 1024)) MiB)"
done
# --- 5. data images --------------------------------------------------------------------------
# Patroni (PostgreSQL HA with the Kubernetes API as its DCS) and pgBackRest (backups) come from
# Debian too; the image is keyed by its package list, so adding one rebuilds it.
DATA_PACKAGES=bash,postgresql-15,postgresql-client-15,patroni,pgbackrest,redis-server,redis-tools
if [[ $(docker image inspect "$DATA_BASE_IMAGE" --format '{{index .Config.Labels "io.brainai.packages"}}' \
  2>/dev/null) != "$DATA_PACKAGES" ]]; then
  t0=$SECONDS
  import_rootfs "$DATA_BASE_IMAGE" "$(rootfs_tarball "$DATA_PACKAGES")" \
    --change "LABEL org.opencontainers.image.base.name=debian:$SUITE io.brainai.packages=$DATA_PACKAGES"
  log "data base image ready in $((SECONDS - t0))s"
fi
for target in postgres redis; do
  image=$POSTGRES_IMAGE
  [[ $target == redis ]] && image=$REDIS_IMAGE
  t0=$SECONDS
  # No revision label: these images hold Debian's packages, not this checkout, and an id that
  # changes with every commit would rebuild the kind node image (which carries them) each time.
  logged "image-$target" docker build --target "$target" --build-arg BASE_IMAGE="$DATA_BASE_IMAGE" \
    --tag "$image" "$here/data"
  log "  $image built in $((SECONDS - t0))s ($(($(docker image inspect "$image" --format '{{.Size}}') / 1024 / 1024)) MiB)"
done
log "done in $((SECONDS - t_all))s: $ENGINE_IMAGE $OPERATOR_IMAGE $POSTGRES_IMAGE $REDIS_IMAGE"
