#!/usr/bin/env bash
# Build the kind node image offline, by hand: what `kind build node-image` makes, without a pull.
#
#   e2e/kind/node-image.sh     # prints the image name (brain-ai/kind-node:v1.34.4-KEY) on stdout
#
# `kind build node-image` fetches every image it did not build itself (`ctr content fetch`, no
# check for local content) and needs a newer containerd than Debian's, so the image is assembled
# here from the same parts:
#   1. binaries (e2e/cluster/build.sh node): kubelet, kubeadm, kube-proxy, CoreDNS,
#      local-path-provisioner, crictl, pause, plus the control plane's own;
#   2. base (the equivalent of kindest/base): Debian bookworm with systemd and Debian's
#      containerd 1.6 / runc 1.1 / CNI plugins 1.1, kind's own images/base/files and the steps of
#      its base Dockerfile, and e2e/images/runc-wrapper as /usr/local/sbin/runc;
#   3. the images a node runs, each `docker import`ed from those binaries under the exact name
#      kubeadm and kind look for (kube-*, etcd, coredns, pause, local-path-provisioner and its
#      helper, metrics-server) and the pod network (e2e/kind/node/cni.*, kindnetd's stand-in);
#   4. the node: base + kubelet/kubeadm/kubectl + /kind/manifests + those images imported into
#      its containerd with kind's importer flags, committed; the project's data images
#      (brain-ai/postgres, brain-ai/redis, which e2e/images/build.sh must have built) go in too,
#      since they change rarely and `kind load` would otherwise copy them into every new cluster.
# KEY hashes the pinned versions, every file that goes in and the data images' ids, so a change
# rebuilds and an unchanged tree returns at once. Progress on stderr, logs in $BRAINAI_CACHE/logs/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
# shellcheck source=../images/rootfs.sh
source "$here/../images/rootfs.sh"

SUITE=$DEBIAN_SUITE
WORK=$KIND_DIR/work
LOGS=$CACHE/logs
mkdir -p "$WORK" "$LOGS"
t_all=$SECONDS
log() { printf '[node-image %4ds] %s\n' "$((SECONDS - t_all))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
logged() {
  local name=$1; shift
  if ! "$@" >"$LOGS/$name.log" 2>&1; then
    tail -n 40 "$LOGS/$name.log" >&2
    die "$name failed (full log: $LOGS/$name.log)"
  fi
}

DATA_IMAGES=(brain-ai/postgres:15 brain-ai/redis:7.0)
data_ids=$(docker image inspect --format '{{.Id}}' "${DATA_IMAGES[@]}") \
  || die "build the data images first (e2e/images/build.sh)"
key=$( (cat "$here/../cluster/versions.env" "$0" "$here"/node/* "$here/../images/runc-wrapper" \
  "$here/../images/rootfs.sh"; echo "$data_ids") | sha256sum | cut -c1-12)
IMAGE=brain-ai/kind-node:$K8S_VERSION-$key
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE present"
  echo "$IMAGE"
  exit 0
fi

# --- 1. binaries -----------------------------------------------------------------------------
"$here/../cluster/build.sh" node
KIND_SRC=$CACHE/go/mod/sigs.k8s.io/kind@$KIND_VERSION
[[ -d $KIND_SRC/images/base/files ]] || die "kind's module source is missing: $KIND_SRC"

# --- 2. base ---------------------------------------------------------------------------------
NODE_PACKAGES=systemd,systemd-sysv,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod
NODE_PACKAGES+=,libseccomp2,pigz,fuse-overlayfs,bash,ca-certificates,curl,jq,procps,socat,ebtables,ipset
NODE_PACKAGES+=,iputils-ping,dnsutils,containerd,runc,containernetworking-plugins
ROOTFS_IMAGE=brain-ai/kind-rootfs:$SUITE-$key
BASE_IMAGE=brain-ai/kind-base:$SUITE-$key
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  import_rootfs "$ROOTFS_IMAGE" "$(rootfs_tarball "$NODE_PACKAGES")"
  ctx=$WORK/base
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp -r "$KIND_SRC/images/base/files" "$ctx/files" && chmod -R u+w "$ctx"
  cp "$BIN/crictl" "$here/../images/runc-wrapper" "$ctx/"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $ROOTFS_IMAGE
COPY files/usr/local/bin/ /usr/local/bin/
COPY files/kind/ /kind/
COPY files/etc/ /etc/
COPY crictl /usr/local/bin/crictl
# containerd finds runc on PATH, /usr/local/sbin first: the wrapper, which runs Debian's runc.
COPY runc-wrapper /usr/local/sbin/runc
# The steps of kind's images/base/Dockerfile, with Debian's containerd, runc and CNI plugins
# where kind installs its own builds.
RUN chmod 755 /usr/local/bin/* /usr/local/sbin/runc /kind/bin /kind/bin/* \\
 && find /etc/systemd /etc/containerd /etc/default /etc/sysctl.d /etc/crictl.yaml -type f -exec chmod 644 {} + \\
 && find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete \\
 && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \\
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \\
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \\
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \\
 && ln -sf "\$(which systemd)" /sbin/init \\
 && for b in containerd ctr containerd-shim-runc-v2; do ln -sf /usr/bin/\$b /usr/local/bin/\$b; done \\
 && mkdir -p /opt/cni && ln -sfn /usr/lib/cni /opt/cni/bin \\
 && ctr oci spec \\
      | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \\
      | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \\
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \\
 && systemctl mask systemd-binfmt.service \\
 && mkdir -p /etc/kubernetes/manifests
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
DOCKERFILE
  log "building $BASE_IMAGE"
  logged kind-base-image env DOCKER_BUILDKIT=0 docker build -t "$BASE_IMAGE" "$ctx"
  docker rmi "$ROOTFS_IMAGE" >/dev/null
  rm -rf "$ctx"
fi

# --- 3. the images a node runs ---------------------------------------------------------------
storage_const() { sed -n "s/^const $1 = \"\(.*\)\"/\1/p" "$KIND_SRC/pkg/build/nodeimage/const_storage.go"; }
PROVISIONER_IMAGE=$(storage_const storageProvisionerImage)
HELPER_IMAGE=$(storage_const storageHelperImage)
[[ -n $PROVISIONER_IMAGE && -n $HELPER_IMAGE ]] || die "no storage image names in kind's const_storage.go"
K8S_REGISTRY=registry.k8s.io
METRICS_SERVER_IMAGE=$K8S_REGISTRY/metrics-server/metrics-server:$METRICS_SERVER_VERSION
NODE_IMAGES=()
img=$WORK/img

# skeleton DIR: what every image gets (users, nsswitch, /tmp).
skeleton() {
  mkdir -p "$1"/{etc,tmp,root,var/run}
  chmod 1777 "$1/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$1/etc/passwd"
  printf 'nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n' >>"$1/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$1/etc/group"
  echo 'hosts: files dns' >"$1/etc/nsswitch.conf"
}
# stage DIR PATH...: Debian files (globs allowed) and the shared libraries they load, from the base.
stage() {
  local dir=$1; shift
  docker run --rm --network none --entrypoint bash -v "$dir:/out" "$BASE_IMAGE" -euc '
    for f in "$@"; do
      for p in $(ls -d $f); do
        cp -a --parents "$p" /out/
        [ -L "$p" ] && cp -a --parents "$(readlink -f "$p")" /out/
        for l in $(ldd "$(readlink -f "$p")" 2>/dev/null | grep -o "/[^ ]*"); do
          cp -L --parents -n "$l" /out/ 2>/dev/null || true
        done
      done
    done' stage "$@"
}
# image NAME DIR [--change ...]: import DIR as NAME.
image() {
  local name=$1 dir=$2; shift 2
  tar -C "$dir" --numeric-owner -cf - . | docker import "$@" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$name" >/dev/null
  NODE_IMAGES+=("$name")
}
# binary_image NAME BINARY PATH [ENTRYPOINT-JSON]
binary_image() {
  local dir=$img/${1//[\/:]/_}
  skeleton "$dir"
  install -D -m 0755 "$2" "$dir$3"
  if [[ -n ${4:-} ]]; then image "$1" "$dir" --change "ENTRYPOINT $4"; else image "$1" "$dir"; fi
}

if [[ ! -s $WORK/images-$key.tar ]]; then
  log "node images from the Go-built binaries"
  rm -rf "$img" && mkdir -p "$img"
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    binary_image "$K8S_REGISTRY/$c:$K8S_VERSION" "$BIN/$c" "/usr/local/bin/$c"
  done
  # kubeadm v1.34 asks for etcd 3.6.5-0; it runs the pinned (newer patch) etcd.
  binary_image "$K8S_REGISTRY/etcd:$ETCD_IMAGE_TAG" "$BIN/etcd" /usr/local/bin/etcd
  binary_image "$K8S_REGISTRY/coredns/coredns:$COREDNS_VERSION" "$BIN/coredns" /coredns '["/coredns"]'
  # The sandbox image: kind's containerd config names 3.10, kubeadm 3.10.1.
  binary_image "$K8S_REGISTRY/pause:$PAUSE_VERSION" "$BIN/pause" /pause '["/pause"]'
  docker tag "$K8S_REGISTRY/pause:$PAUSE_VERSION" "$K8S_REGISTRY/pause:3.10" && NODE_IMAGES+=("$K8S_REGISTRY/pause:3.10")
  binary_image "$METRICS_SERVER_IMAGE" "$BIN/metrics-server" /metrics-server '["/metrics-server"]'
  binary_image "$PROVISIONER_IMAGE" "$BIN/local-path-provisioner" /usr/local/bin/local-path-provisioner

  d=$img/kube-proxy && skeleton "$d"
  stage "$d" /usr/sbin/xtables-legacy-multi /usr/sbin/xtables-nft-multi /usr/sbin/conntrack \
    /bin/sh /bin/dash /usr/bin/grep /usr/bin/ln '/usr/lib/x86_64-linux-gnu/xtables/*'
  install -m 0755 "$here/node/iptables-wrapper" "$d/usr/sbin/iptables-wrapper"
  for c in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf iptables-wrapper "$d/usr/sbin/$c"
  done
  install -D -m 0755 "$BIN/kube-proxy" "$d/usr/local/bin/kube-proxy"
  image "$K8S_REGISTRY/kube-proxy:$K8S_VERSION" "$d"

  # local-path's helper runs the setup/teardown scripts of kind's storage manifest.
  d=$img/helper && skeleton "$d"
  stage "$d" /bin/sh /bin/dash /bin/mkdir /bin/rm /bin/chmod /bin/ls
  image "$HELPER_IMAGE" "$d"

  d=$img/cni && skeleton "$d"
  stage "$d" /bin/sh /bin/dash /bin/cat /bin/mv /bin/sleep /usr/bin/printf /usr/bin/grep /sbin/ip /bin/ip
  install -D -m 0755 "$BIN/kubectl" "$d/usr/local/bin/kubectl"
  install -m 0755 "$here/node/cni.sh" "$d/cni.sh"
  image docker.io/brain-ai/kind-cni:v1 "$d"

  logged save-node-images docker save "${NODE_IMAGES[@]}" -o "$WORK/images-$key.tar.tmp"
  mv "$WORK/images-$key.tar.tmp" "$WORK/images-$key.tar"
  docker rmi "${NODE_IMAGES[@]}" >/dev/null
  rm -rf "$img"
  log "  ${#NODE_IMAGES[@]} images, $(du -h "$WORK/images-$key.tar" | cut -f1)"
fi

# --- 4. the node -----------------------------------------------------------------------------
log "assembling $IMAGE"
builder=brain-ai-node-build
docker rm -f "$builder" >/dev/null 2>&1 || true
trap 'docker rm -f "$builder" >/dev/null 2>&1 || true' EXIT
docker run -d --name "$builder" --privileged --security-opt seccomp=unconfined --entrypoint=sleep \
  "$BASE_IMAGE" infinity >/dev/null
for b in kubelet kubeadm kubectl; do docker cp "$BIN/$b" "$builder:/usr/bin/$b"; done
docker exec "$builder" sh -c "chown root:root /usr/bin/kube* && chmod 755 /usr/bin/kube* \
  && mkdir -p /kind/manifests && printf $K8S_VERSION >/kind/version"
docker cp "$here/node/cni.yaml" "$builder:/kind/manifests/default-cni.yaml"
# kind's own storage manifest (local-path), cut out of its Go source with the image names filled in.
sed -n '/^const defaultStorageManifest = `/,/^`$/p' "$KIND_SRC/pkg/build/nodeimage/const_storage.go" \
  | sed '1d; $d' | sed "s|\` + storageProvisionerImage + \`|$PROVISIONER_IMAGE|; s|\` + storageHelperImage + \`|$HELPER_IMAGE|" \
  >"$WORK/default-storage.yaml"
grep -q "image: $PROVISIONER_IMAGE" "$WORK/default-storage.yaml" || die "could not render kind's storage manifest"
docker cp "$WORK/default-storage.yaml" "$builder:/kind/manifests/default-storage.yaml"
wanted=$(docker exec "$builder" kubeadm config images list --kubernetes-version "$K8S_VERSION" | tr '\n' ' ')
docker exec -d "$builder" sh -c 'containerd >/tmp/containerd.log 2>&1'
for _ in $(seq 30); do docker exec "$builder" test -S /run/containerd/containerd.sock && break; sleep 1; done
docker exec -i "$builder" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
  --all-platforms --no-unpack --digests - <"$WORK/images-$key.tar" >/dev/null
docker save "${DATA_IMAGES[@]}" | docker exec -i "$builder" ctr --namespace=k8s.io images import \
  --all-platforms --no-unpack --digests - >/dev/null
have=$(docker exec "$builder" ctr -n k8s.io images ls -q)
for want in $wanted; do
  grep -qx "$want" <<<"$have" || die "kubeadm wants $want, which the node image lacks"
done
docker exec "$builder" sh -c 'kill $(pidof containerd); sleep 1; rm -rf /tmp/* /var/log/*.log'
docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' "$builder" "$IMAGE" >/dev/null
# Older builds (other keys) are only disk now.
for old in $(docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^brain-ai/kind-(node|base):'); do
  [[ $old == "$IMAGE" || $old == "$BASE_IMAGE" ]] || docker rmi "$old" >/dev/null 2>&1 || true
done
find "$WORK" -maxdepth 1 -name 'images-*.tar' ! -name "images-$key.tar" -delete
log "$IMAGE ($(($(docker image inspect "$IMAGE" --format '{{.Size}}') / 1024 / 1024)) MiB) in $((SECONDS - t_all))s"
echo "$IMAGE"
