# Library for the offline image builds (sourced): Debian root filesystems made with debootstrap
# from the host's apt mirror, since no registry image can be pulled here.
# The caller defines log, die, logged (NAME CMD...: output to $LOGS/NAME.log) and sets WORK (where
# tarballs are kept) and SUITE (a Debian suite, e.g. bookworm).

# debian_mirror: DEBIAN_MIRROR, else the host's apt source for $SUITE.
debian_mirror() {
  if [[ -n ${DEBIAN_MIRROR:-} ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local m
  # deb822 sources first (Debian 12's default), then the one-line format.
  m=$(awk -v s="$SUITE" '/^URIs:/ {u=$2} /^Suites:/ {for (i=2;i<=NF;i++) if ($i==s) {print u; exit}}' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  [[ -n $m ]] || m=$(awk -v s="$SUITE" '$1=="deb" && $3==s {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [[ -n $m ]] || die "no apt source for $SUITE found; set DEBIAN_MIRROR"
  echo "$m"
}

# rootfs_tarball PACKAGES: debootstrap minbase plus PACKAGES (comma-separated), trimmed of what a
# container never uses, kept as $WORK/rootfs-SUITE-KEY.tar.gz (KEY hashes the list); prints the path.
rootfs_tarball() {
  local packages=$1 key tarball rootfs
  key=$(sha256sum <<<"$SUITE $packages" | cut -c1-12)
  tarball=$WORK/rootfs-$SUITE-$key.tar.gz rootfs=$WORK/rootfs-$SUITE-$key
  if [[ ! -s $tarball ]]; then
    command -v debootstrap >/dev/null || {
      log "installing debootstrap"
      logged apt-debootstrap env DEBIAN_FRONTEND=noninteractive \
        bash -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap'
    }
    local mirror t0=$SECONDS
    mirror=$(debian_mirror)
    log "debootstrap $SUITE (minbase + $packages) from $mirror"
    rm -rf "$rootfs"
    logged "debootstrap-$key" debootstrap --variant=minbase --components=main \
      --include="$packages" "$SUITE" "$rootfs" "$mirror"
    chroot "$rootfs" apt-get clean
    (cd "$rootfs" && rm -rf var/lib/apt/lists/* var/cache/apt/*.bin var/log/*.log \
      var/cache/debconf/*-old usr/share/man/* usr/share/info/* usr/share/locale/* \
      && find usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete)
    tar -C "$rootfs" --numeric-owner -cf - . | gzip -1 >"$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    log "  rootfs $(du -h "$tarball" | cut -f1) in $((SECONDS - t0))s"
  fi
  echo "$tarball"
}

# import_rootfs IMAGE TARBALL [--change ...]: docker import, with LANG set.
import_rootfs() {
  local image=$1 tarball=$2; shift 2
  log "importing $image from ${tarball##*/}"
  logged "docker-import-${image//[\/:]/-}" docker import --change 'ENV LANG=C.UTF-8' "$@" "$tarball" "$image"
}
