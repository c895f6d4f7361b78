#!/usr/bin/env bash
# Build the local clusters' binaries from Go modules, pinned, into a cache outside the repo.
#
#   e2e/cluster/build.sh          # the control plane, kwok, metrics-server, kubectl, helm, kind
#   e2e/cluster/build.sh node     # ... and what a kind node runs besides: kubelet, kubeadm,
#                                 # kube-proxy, CoreDNS, local-path-provisioner, crictl, pause
#
# A cold build compiles Kubernetes and etcd from source (tens of minutes on 2 cores); a warm run
# finds every binary stamped with the wanted version and returns in well under a second.
# Progress goes to stderr; full build logs to $BRAINAI_CACHE/logs/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

# shellcheck source=common.sh
source "$here/common.sh"
LOGS=$CACHE/logs
WORK=$CACHE/src
mkdir -p "$BIN" "$LOGS" "$WORK"
# One build at a time (make -j, a test fixture and a background kind start may all ask).
exec 9>"$WORK/.build.lock"
flock 9

export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOPATH=$CACHE/go
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOPROXY=${GOPROXY:-https://proxy.golang.org,direct}

K8S_STAGING=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
  kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller)

start_all=$SECONDS
built=0
log() { printf '[build %4ds] %s\n' "$((SECONDS - start_all))" "$*" >&2; }

# up_to_date NAME VERSION: the binary exists and was built from VERSION.
up_to_date() { [[ -x $BIN/$1 && "$(cat "$BIN/.$1.version" 2>/dev/null)" == "$2" ]]; }

# with_ticker NAME CMD...: run CMD with output to a log, printing elapsed time while it runs.
with_ticker() {
  local name=$1; shift
  local t0=$SECONDS logf=$LOGS/$name.log
  ("$@") >"$logf" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if kill -0 "$pid" 2>/dev/null && (((SECONDS - t0) % 30 < 5)); then
      log "  … $name still building ($((SECONDS - t0))s)"
    fi
  done
  if ! wait "$pid"; then
    log "FAILED: $name (last lines of $logf follow)"
    tail -n 30 "$logf" >&2
    exit 1
  fi
  log "  $name built in $((SECONDS - t0))s"
}

stamp() { echo "$2" >"$BIN/.$1.version"; built=$((built + 1)); }

# --- Kubernetes: a wrapper module, since k8s.io/kubernetes maps its staging modules to local paths.
k8s_module() {
  local dir=$WORK/kubernetes-$K8S_VERSION staging=v0${K8S_VERSION#v1}
  if [[ ! -f $dir/.ready ]]; then
    mkdir -p "$dir"
    {
      echo "module brainai.local/k8sbuild"
      echo
      echo "go 1.24.0"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      echo "replace ("
      for m in "${K8S_STAGING[@]}"; do echo "	k8s.io/$m => k8s.io/$m $staging"; done
      echo ")"
    } >"$dir/go.mod"
    cat >"$dir/tools.go" <<'EOF'
//go:build tools

package tools
EOF
    log "resolving k8s.io/kubernetes $K8S_VERSION modules"
    with_ticker k8s-modules bash -c "cd '$dir' && go get k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION \
      k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION \
      k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION"
    touch "$dir/.ready"
  fi
  echo "$dir"
}

build_k8s() {
  local name=$1
  up_to_date "$name" "$K8S_VERSION" && return 0
  local dir minor
  dir=$(k8s_module)
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  log "building $name $K8S_VERSION"
  with_ticker "$name" bash -c "cd '$dir' && go build -trimpath -ldflags '$ld' -o '$BIN/$name' k8s.io/kubernetes/cmd/$name"
  stamp "$name" "$K8S_VERSION"
}

# --- etcd: its own wrapper module (its dependency versions clash with Kubernetes').
build_etcd() {
  up_to_date etcd "$ETCD_VERSION" && return 0
  local dir=$WORK/etcd-$ETCD_VERSION
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<EOF
module brainai.local/etcdbuild

go 1.24.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
  cat >"$dir/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  log "building etcd $ETCD_VERSION"
  with_ticker etcd bash -c "cd '$dir' && go mod tidy && go build -trimpath -ldflags '-s -w' -o '$BIN/etcd' ."
  stamp etcd "$ETCD_VERSION"
}

# --- Modules with no replace directives: plain go install.
# build_install NAME PACKAGE VERSION [LDFLAGS [STAMP]]: STAMP (default: VERSION) is what the cached
# binary must have been built from; one that depends on LDFLAGS too makes a change of them rebuild.
build_install() {
  local name=$1 pkg=$2 version=$3 ld=${4:-} key=${5:-$3}
  up_to_date "$name" "$key" && return 0
  log "building $name $version"
  with_ticker "$name" env GOBIN="$BIN" GOFLAGS= go install -trimpath -ldflags "-s -w $ld" "$pkg@$version"
  stamp "$name" "$key"
}

# --- kstatus: a small program over sigs.k8s.io/cli-utils (what Flux uses to read object health).
build_kstatus() {
  local stamp_value="$CLI_UTILS_VERSION-$(sha256sum "$here/kstatus/main.go" | cut -c1-12)"
  up_to_date kstatus "$stamp_value" && return 0
  local dir=$WORK/kstatus-$CLI_UTILS_VERSION
  mkdir -p "$dir"
  cp "$here/kstatus/main.go" "$dir/main.go"
  printf 'module brainai.local/kstatus\n\ngo 1.24.0\n\nrequire sigs.k8s.io/cli-utils %s\n' \
    "$CLI_UTILS_VERSION" >"$dir/go.mod"
  log "building kstatus (cli-utils $CLI_UTILS_VERSION)"
  with_ticker kstatus bash -c "cd '$dir' && go mod tidy && go build -trimpath -ldflags '-s -w' -o '$BIN/kstatus' ."
  stamp kstatus "$stamp_value"
}

# --- pause: the pod sandbox process, Kubernetes' build/pause semantics, as a static C program.
build_pause() {
  local stamp_value="$PAUSE_VERSION-$(sha256sum "$here/pause.c" | cut -c1-12)"
  up_to_date pause "$stamp_value" && return 0
  command -v gcc >/dev/null || { log "gcc is needed to build pause"; exit 1; }
  log "building pause $PAUSE_VERSION"
  with_ticker pause gcc -Os -static -DVERSION="\"$PAUSE_VERSION\"" -o "$BIN/pause" "$here/pause.c"
  strip "$BIN/pause"
  stamp pause "$stamp_value"
}

build_node() {
  for b in kubelet kubeadm kube-proxy; do build_k8s "$b"; done
  build_install coredns github.com/coredns/coredns "$COREDNS_VERSION" \
    "-X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
  build_install local-path-provisioner github.com/rancher/local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION" \
    "-X main.VERSION=$LOCAL_PATH_PROVISIONER_VERSION"
  build_install crictl sigs.k8s.io/cri-tools/cmd/crictl "$CRICTL_VERSION" \
    "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"
  build_pause
}

for set in "$@"; do
  [[ $set == node ]] || { log "unknown build set '$set' (known: node)"; exit 2; }
done

kwok_ld="-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$K8S_VERSION"
build_etcd
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do build_k8s "$b"; done
build_install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" "$kwok_ld"
build_install kwokctl sigs.k8s.io/kwok/cmd/kwokctl "$KWOK_VERSION" "$kwok_ld"
build_install metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server "$METRICS_SERVER_VERSION" \
  "-X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
# helm, stamped as its own Makefile stamps a release: besides the version, the Kubernetes version
# that `helm template` and `helm lint` assume without --kube-version, taken from the k8s.io/client-go
# that helm's go.mod requires (v0.34.x: 1.34). Unstamped, helm assumes v1.20, and a chart that asks
# for a newer kubeVersion (ours: >=1.30) does not render.
helm_go_mod=$(cd "$WORK" && GOFLAGS= go mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
  sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
helm_client_go=$(awk '$1 == "k8s.io/client-go" { print $2 }' "$helm_go_mod")
[[ $helm_client_go =~ ^v([0-9]+)\.([0-9]+)\. ]] ||
  { log "no k8s.io/client-go version in helm $HELM_VERSION's go.mod ($helm_go_mod)"; exit 1; }
helm_k8s_major=$((BASH_REMATCH[1] + 1)) helm_k8s_minor=${BASH_REMATCH[2]}
helm_ld="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ld+=" -X $pkg.k8sVersionMajor=$helm_k8s_major -X $pkg.k8sVersionMinor=$helm_k8s_minor"
done
build_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$helm_ld" \
  "$HELM_VERSION-$(printf %s "$helm_ld" | sha256sum | cut -c1-12)"
build_install kind sigs.k8s.io/kind "$KIND_VERSION"
build_kstatus
[[ " $* " == *" node "* ]] && build_node

# Manifests pinned with the binaries, taken from the same module versions.
module_dir() { go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)",/\1/p'; }
concat_yaml() { for f in "$@"; do cat "$f"; echo "---"; done; }
mkdir -p "$CACHE/manifests"
# metrics-server's registration (a kustomize directory: kwokctl builds it, drops the Deployment and
# points the Service at the local process).
manifest=$CACHE/manifests/metrics-server-$METRICS_SERVER_VERSION
if [[ ! -e $manifest ]]; then
  ln -s "$(module_dir "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION")/manifests/base" "$manifest"
fi
# kwok stages: fast node and pod lifecycles, plus dynamic volumes for the kwok-volume StorageClass.
manifest=$CACHE/manifests/kwok-stages-$KWOK_VERSION.yaml
if [[ ! -s $manifest ]]; then
  src=$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")/kustomize/stage
  concat_yaml "$src"/node/fast/node-initialize.yaml "$src"/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    "$src"/pod/fast/pod-{ready,complete,delete}.yaml "$src"/volume/fast/{pv,pvc}-*.yaml >"$manifest.tmp"
  mv "$manifest.tmp" "$manifest"
  concat_yaml "$src"/volume/fast/storage-class.yaml >"$CACHE/manifests/kwok-storage-class-$KWOK_VERSION.yaml"
fi

# The Prometheus Operator's ServiceMonitor and PrometheusRule CRDs, for monitoring tests.
manifest=$CACHE/manifests/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION.yaml
if [[ ! -s $manifest ]]; then
  src=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
  concat_yaml "$src"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml \
    >"$manifest.tmp" && mv "$manifest.tmp" "$manifest"
fi

if ((built > 0)); then
  log "built $built binaries in $((SECONDS - start_all))s into $BIN"
else
  log "all binaries cached in $BIN"
fi
