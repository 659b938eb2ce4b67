#!/usr/bin/env bash
# Provision a real single node for the e2e tier (tests/e2e): everything a kubelet needs to run the
# chart and the examples as real containers on this machine, with no image registry.
#
# Idempotent and non-interactive (CI=true, no stdin). Everything is cached OUTSIDE the repo in
# ${FSO_CACHE:-$HOME/.cache/featurestore-operator}/node:
#   bin/       kubelet, kube-proxy, kube-scheduler built from the SAME Debian kubernetes 1.20 tree
#              (and Go cache) that hack/provision-controlplane.sh keeps in $FSO_CACHE/k8s/build
#   rootfs/    a debootstrap'd bookworm with Debian's python3 (+venv, pip, `python`)
#   buildah/   buildah's storage (vfs driver)
#   images/    docker-archive tarballs the node fixture imports into its containerd, each with a
#              .key file: the image is rebuilt only when its key changes
#     pause.tar            k8s.gcr.io/pause:3.2 (gcc -static of the tree's build/pause/linux/pause.c)
#     python-base.tar      the Dockerfile's PYTHON_IMAGE, made from rootfs/ (pulls are impossible here)
#     operator.tar         Dockerfile target `operator`      -> featurestore-operator:e2e
#     feast.tar            Dockerfile target `feast-runtime` -> featurestore-feast:e2e
#                          keys: hack/lib/image-keys.sh (both include the base image's key: a new
#                          base rebuilds both); hack/release.sh pushes these archives instead of
#                          building again when its tree's keys are the same
#     redis.tar            the operator's default in-cluster Redis image name (redis:7.2-alpine), made
#                          from Debian's redis-server: the product's default stays untouched
# Debian packages: containerd, runc, containernetworking-plugins, buildah, debootstrap, iptables,
# dnsmasq-base (cluster DNS of the tests), conntrack, libc6-dev (static pause), docker-registry (the
# local OCI registry the main scenario installs a release from: hack/local-registry.sh), skopeo
# (hack/release.sh copies a provisioned image archive to the registry with it).
#
# The Dockerfile is built UNCHANGED with pulls disabled; the host's CA bundle is bind-mounted into
# RUN steps (pip reaches PyPI through a TLS-intercepting proxy here) and never baked into an image.
# Prints the time it took: cold (first run) vs warm (everything cached).
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive
FSO_CACHE="${FSO_CACHE:-$HOME/.cache/featurestore-operator}"
NODE="$FSO_CACHE/node"
BIN="$NODE/bin"
IMAGES="$NODE/images"
ROOTFS="$NODE/rootfs/python"
BUILD_ROOT="$FSO_CACHE/k8s/build"
K8S_VERSION="1.20.2"
NODE_RECIPE="node-${K8S_VERSION}-r1"
PAUSE_IMAGE="k8s.gcr.io/pause:3.2"
OPERATOR_IMAGE="${OPERATOR_IMAGE:-featurestore-operator:e2e}"
FEAST_IMAGE="${FEAST_IMAGE:-featurestore-feast:e2e}"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
START_TS=$(date +%s)

log() { printf '[provision-node] %s\n' "$*" >&2; }
die() { printf '[provision-node] ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck disable=SC2154 # rc is assigned inside the trap
trap 'rc=$?; [ $rc -ne 0 ] && printf "[provision-node] FAILED (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2' ERR
[ "$(id -u)" = 0 ] || die "the node needs root (containerd, iptables, bridges, mounts)"
mkdir -p "$BIN" "$IMAGES" "$NODE/rootfs" "$NODE/buildah"
cold=0

# --------------------------------------------------------------------------- Debian packages
# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
APT_PACKAGES=(containerd runc containernetworking-plugins buildah debootstrap iptables dnsmasq-base conntrack
  libc6-dev gcc docker-registry skopeo)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  cold=1
  log "apt-get install ${missing[*]}"
  apt_get_locked update -qq </dev/null
  apt_get_locked install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi

# --------------------------------------------------------------------------- images
k8s_tree() { ls -d "$BUILD_ROOT"/kubernetes-*/ 2>/dev/null | head -n1 | sed 's:/$::'; }
bh() { buildah --root "$NODE/buildah/root" --runroot "$NODE/buildah/run" --storage-driver vfs "$@"; }
key_of() { sha256sum | cut -c1-16; }
# shellcheck source=lib/image-keys.sh
. "$ROOT/hack/lib/image-keys.sh"
fresh() { [ -f "$IMAGES/$1.tar" ] && [ "$(cat "$IMAGES/$1.key" 2>/dev/null)" = "$2" ]; }
# save NAME IMAGE KEY: export IMAGE from buildah's storage as a docker-archive for containerd
save() {
  rm -f "$IMAGES/$1.tar.tmp"
  bh push -q "$3" "docker-archive:$IMAGES/$1.tar.tmp:$3" >/dev/null
  # the old key goes first: a reader (hack/release.sh) never sees the new archive under the old key
  rm -f "$IMAGES/$1.key"
  mv -f "$IMAGES/$1.tar.tmp" "$IMAGES/$1.tar"
  echo "$2" >"$IMAGES/$1.key"
  log "image $3 -> $IMAGES/$1.tar ($(du -m "$IMAGES/$1.tar" | cut -f1) MB)"
}
# from_rootfs NAME IMAGE KEY DIR [buildah config args...]: an image whose only layer is DIR
from_rootfs() {
  local name="$1" image="$2" key="$3" dir="$4" ctr
  shift 4
  ctr="$(bh from scratch)"
  bh copy "$ctr" "$dir/" / >/dev/null
  bh config "$@" "$ctr"
  bh commit -q --rm "$ctr" "$image" >/dev/null
  save "$name" "$key" "$image"
}

tree="$(k8s_tree)"
[ -n "$tree" ] || { FSO_FORCE_BUILD=1 bash "$ROOT/hack/provision-controlplane.sh" >&2; tree="$(k8s_tree)"; }
pause_key="$(cat "$tree/build/pause/linux/pause.c" | key_of)"
if ! fresh pause "$pause_key"; then
  cold=1
  tmp="$(mktemp -d)"
  gcc -Os -static -o "$tmp/pause" "$tree/build/pause/linux/pause.c"
  strip "$tmp/pause"
  from_rootfs pause "$PAUSE_IMAGE" "$pause_key" "$tmp" --entrypoint '["/pause"]' --user 65535:65535
  rm -rf "$tmp"
fi

# The Dockerfile's base image name (ARG PYTHON_IMAGE) and the Feast version it pins
python_image="$(dockerfile_python_image "$ROOT")" || die "no ARG PYTHON_IMAGE in the Dockerfile"
rootfs_key="$FSO_ROOTFS_KEY"
if [ "$(cat "$ROOTFS/.fso-key" 2>/dev/null)" != "$rootfs_key" ]; then
  cold=1
  log "debootstrap bookworm with Debian's python3 into $ROOTFS (~2 min)"
  rm -rf "$ROOTFS.tmp"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,python-is-python3,passwd \
    bookworm "$ROOTFS.tmp" http://deb.debian.org/debian >"$NODE/rootfs/debootstrap.log" 2>&1 ||
    { tail -n 20 "$NODE/rootfs/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$ROOTFS.tmp"/var/cache/apt/archives/*.deb "$ROOTFS.tmp"/var/lib/apt/lists/*
  rm -rf "$ROOTFS" && mv "$ROOTFS.tmp" "$ROOTFS"
  echo "$rootfs_key" >"$ROOTFS/.fso-key"
fi
base_key="$(base_image_key "$ROOT")"
if ! fresh python-base "$base_key" || ! bh inspect "$python_image" >/dev/null 2>&1; then
  cold=1
  from_rootfs python-base "$python_image" "$base_key" "$ROOTFS" --cmd '["python3"]' \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8
fi

# bud TARGET IMAGE: build a target of the unchanged Dockerfile, no pulls, host CA mounted for pip
bud() {
  log "buildah bud --target $1 -> $2 (log: $NODE/buildah/$1.log)"
  (cd "$ROOT" && bh bud --pull=never --isolation chroot --layers --target "$1" -t "$2" \
    -v "$CA_BUNDLE:$CA_BUNDLE:ro" -f Dockerfile . >"$NODE/buildah/$1.log" 2>&1) ||
    { tail -n 40 "$NODE/buildah/$1.log" >&2; die "building Dockerfile target $1 failed"; }
}
operator_key="$(operator_image_key "$ROOT" "$base_key")"
if ! fresh operator "$operator_key"; then
  cold=1
  bud operator "$OPERATOR_IMAGE"
  save operator "$operator_key" "$OPERATOR_IMAGE"
fi
feast_key="$(feast_image_key "$ROOT" "$base_key")"
if ! fresh feast "$feast_key"; then
  cold=1
  bud feast-runtime "$FEAST_IMAGE"
  save feast "$feast_key" "$FEAST_IMAGE"
fi

# The operator's default in-cluster Redis image (redis:7.2-alpine), made from Debian's redis-server
redis_image="$(cd "$ROOT" && sed -n 's/^ *redis_image: ImageRef = "\(.*\)"$/\1/p' operator/featurestore_operator/api/config.py)"
[ -n "$redis_image" ] || die "no redis_image default found in operator/featurestore_operator/api/config.py"
redis_key="$(echo "$rootfs_key redis-server $redis_image r1" | key_of)"
if ! fresh redis "$redis_key"; then
  cold=1
  rdir="$NODE/rootfs/redis"
  log "rootfs for $redis_image: Debian redis-server on the python rootfs"
  rm -rf "$rdir" && cp -a "$ROOTFS" "$rdir"
  cp /etc/resolv.conf "$rdir/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$rdir/usr/sbin/policy-rc.d" && chmod +x "$rdir/usr/sbin/policy-rc.d"
  chroot "$rdir" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server' \
    >"$NODE/rootfs/redis.log" 2>&1 || { tail -n 20 "$NODE/rootfs/redis.log" >&2; die "redis-server into $rdir failed"; }
  rm -rf "$rdir/usr/sbin/policy-rc.d" "$rdir"/var/lib/apt/lists/* "$rdir"/var/cache/apt/archives/*.deb
  : >"$rdir/etc/resolv.conf"
  mkdir -p "$rdir/data" && chmod 0777 "$rdir/data"
  case "$redis_image" in */*) full="$redis_image" ;; *) full="docker.io/library/$redis_image" ;; esac
  from_rootfs redis "$full" "$redis_key" "$rdir" --entrypoint '["redis-server"]' --user 999:999 --workingdir /data
  rm -rf "$rdir"
fi

# --------------------------------------------------------------------------- kubelet, kube-proxy, kube-scheduler
node_bins_ok() {
  [ "$(cat "$BIN/.stamp" 2>/dev/null)" = "$NODE_RECIPE" ] &&
    [ -x "$BIN/kubelet" ] && [ -x "$BIN/kube-proxy" ] && [ -x "$BIN/kube-scheduler" ]
}

if ! node_bins_ok; then
  cold=1
  tree="$(k8s_tree)"
  if [ -z "$tree" ] || [ ! -d "$tree/.go/src/k8s.io" ]; then
    # the control plane came from KUBEBUILDER_ASSETS/PATH or its tree was pruned: make the tree
    log "no kubernetes source tree in $BUILD_ROOT: running provision-controlplane.sh with FSO_FORCE_BUILD=1"
    FSO_FORCE_BUILD=1 bash "$ROOT/hack/provision-controlplane.sh" >&2
    tree="$(k8s_tree)"
  fi
  [ -n "$tree" ] || die "no kubernetes source tree under $BUILD_ROOT"
  blog="$BUILD_ROOT/build-node.log"
  for what in cmd/kubelet cmd/kube-proxy cmd/kube-scheduler; do
    log "make WHAT=$what in $tree (log: $blog)"
    (
      cd "$tree/.go/src/k8s.io/kubernetes" &&
        env -u GOFLAGS GOPATH="$tree/.go" GOPROXY=off CGO_ENABLED=0 GO111MODULE=off GOCACHE="$FSO_CACHE/k8s/gocache" \
          KUBE_GIT_VERSION="v$K8S_VERSION" KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR="$(echo "$K8S_VERSION" | cut -d. -f2)" \
          KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT="debian-bookworm-$K8S_VERSION" \
          make WHAT="$what" >>"$blog" 2>&1
    ) || { tail -n 40 "$blog" >&2; die "building $what failed"; }
  done
  for b in kubelet kube-proxy kube-scheduler; do
    out="$(ls "$tree"/_output/local/bin/*/*/"$b" 2>/dev/null | head -n1)"
    [ -x "$out" ] || die "$b not found under $tree/_output"
    install -m 0755 "$out" "$BIN/$b"
  done
  echo "$NODE_RECIPE" >"$BIN/.stamp"
fi

echo "Node (cache: $NODE):"
for b in kubelet kube-proxy kube-scheduler; do echo "  $b $("$BIN/$b" --version 2>&1 | head -n1)"; done
for i in pause python-base operator feast redis; do echo "  image $i: $IMAGES/$i.tar (key $(cat "$IMAGES/$i.key"))"; done
echo "[provision-node] done in $(( $(date +%s) - START_TS ))s ($([ "$cold" = 1 ] && echo "cold: built what was missing or stale" || echo "warm: everything cached"))"
