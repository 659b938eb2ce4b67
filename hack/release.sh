#!/usr/bin/env bash
# Make a release: bash hack/release.sh VERSION
#
#   1. files: the version in pyproject.toml, the package and Chart.yaml (version + appVersion), the
#      CHANGELOG's Unreleased section under "## VERSION (DATE)" (hack/release.py; LICENSE checked);
#      committed as "Release VERSION" and tagged vVERSION
#   2. locks: images/*.lock must match their inputs (hack/lock-images.sh --check; needs PyPI)
#   3. images: both Dockerfile targets of the tagged tree, each installing its lock with
#      --require-hashes (the build fails on a stale lock):
#        $REGISTRY/featurestore-operator:VERSION   $REGISTRY/featurestore-feast:VERSION
#      When hack/provision-node.sh already built a target from the same inputs (the content keys of
#      hack/lib/image-keys.sh, computed on the tagged tree, equal its $FSO_CACHE/node/images/NAME.key),
#      that build's archive is pushed as it is (skopeo) instead of building again;
#      FSO_RELEASE_REBUILD=1 always builds (buildah, layers cached in the storage both scripts share).
#   4. chart: packaged with version and appVersion VERSION, its default images pointing at the two
#      above -> dist/featurestore-operator-VERSION.tgz
#   5. push: both images and the chart (helm push oci://$REGISTRY/charts) to the registry
#
# Prints each image's origin ("reused" or "built") and the chart reference.
#
# Idempotent: every step is skipped or repeats to the same result (the tag must point at the
# release commit; buildah reuses its layers; pushes of the same content change nothing).
# REGISTRY (HOST[:PORT][/PATH]) defaults to the local registry hack/local-registry.sh starts
# (plain HTTP on 127.0.0.1; FSO_REGISTRY_PLAIN_HTTP=1 for any other plain-HTTP one). Nothing
# but PyPI (the image builds, the lock check) and Debian (packages) is reached besides it.
# Needs a clean git tree (FSO_RELEASE_ALLOW_DIRTY=1 to skip that check) and root (buildah).
set -Eeuo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${1:?usage: hack/release.sh VERSION}"
FSO_CACHE="${FSO_CACHE:-$HOME/.cache/featurestore-operator}"
VENV="${FSO_VENV:-$FSO_CACHE/venv}"
HELM="${HELM:-$(command -v helm || echo "$FSO_CACHE/bin/helm")}"
STORE="${FSO_BUILDAH_STORE:-$FSO_CACHE/node/buildah}"  # shared with hack/provision-node.sh (base image, layers)
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
DIST="$ROOT/dist"
NODE_IMAGES="${FSO_NODE_IMAGES:-$FSO_CACHE/node/images}"  # hack/provision-node.sh's archives
START_TS=$(date +%s)
log() { printf '[release %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[release] ERROR: %s\n' "$*" >&2; exit 1; }
bh() { buildah --root "$STORE/root" --runroot "$STORE/run" --storage-driver vfs "$@"; }
cd "$ROOT"
# shellcheck source=lib/image-keys.sh
. "$ROOT/hack/lib/image-keys.sh"

if [ -z "${REGISTRY:-}" ]; then
  REGISTRY="$(bash "$ROOT/hack/local-registry.sh" start)"
  FSO_REGISTRY_PLAIN_HTTP=1
fi
case "$REGISTRY" in 127.0.0.1:* | localhost:*) FSO_REGISTRY_PLAIN_HTTP="${FSO_REGISTRY_PLAIN_HTTP:-1}" ;; esac
plain="${FSO_REGISTRY_PLAIN_HTTP:-0}"
OPERATOR_IMAGE="$REGISTRY/featurestore-operator:$VERSION"
FEAST_IMAGE="$REGISTRY/featurestore-feast:$VERSION"

# --- 1. files, commit, tag ----------------------------------------------------------------------
if [ "${FSO_RELEASE_ALLOW_DIRTY:-0}" != 1 ] && [ -n "$(git status --porcelain)" ]; then
  die "the git tree has uncommitted changes: a release is built from a commit"
fi
changed="$("$VENV/bin/python" "$ROOT/hack/release.py" "$VERSION")" || die "release.py refused $VERSION"
if [ -n "$changed" ]; then
  log "release files: $(echo "$changed" | tr '\n' ' ')"
  # shellcheck disable=SC2086
  git add -- $changed
  git -c user.name="${GIT_AUTHOR_NAME:-release}" -c user.email="${GIT_AUTHOR_EMAIL:-release@localhost}" \
    commit -q -m "Release $VERSION" -- $changed
fi
if git rev-parse -q --verify "refs/tags/v$VERSION" >/dev/null; then
  [ "$(git rev-parse "v$VERSION^{commit}")" = "$(git rev-parse HEAD)" ] ||
    die "tag v$VERSION exists and points at another commit than HEAD"
else
  git tag "v$VERSION"
fi

# --- 2. locks -----------------------------------------------------------------------------------
log "checking the image locks against their inputs"
bash "$ROOT/hack/lock-images.sh" --check >&2 || die "a lock is stale: run hack/lock-images.sh, commit, release again"

# --- 3. images ----------------------------------------------------------------------------------
src="$(mktemp -d)"
trap 'rm -rf "$src" "$NODE_IMAGES/.release-$$-"*.tar' EXIT
git archive "v$VERSION" | tar -x -C "$src"   # exactly the tagged tree

# reuse NAME KEY: the path of hack/provision-node.sh's archive NAME.tar when it was built from inputs
# of content key KEY (hard-linked first, then the key read: provision-node.sh removes a key before it
# replaces its archive, so the linked file is the one the key describes)
reuse() {
  local pin="$NODE_IMAGES/.release-$$-$1.tar"
  [ "${FSO_RELEASE_REBUILD:-0}" != 1 ] && command -v skopeo >/dev/null || return 1
  ln -f "$NODE_IMAGES/$1.tar" "$pin" 2>/dev/null || return 1
  [ "$(cat "$NODE_IMAGES/$1.key" 2>/dev/null)" = "$2" ] || return 1
  echo "$pin"
}
base_key="$(base_image_key "$src")"
declare -A archive=()
python_image="$(dockerfile_python_image "$src")" || die "no ARG PYTHON_IMAGE in the Dockerfile"
pull=missing
# No pulls from a public registry here (hack/provision-node.sh made the base image locally)
bh inspect "$python_image" >/dev/null 2>&1 && pull=never
for target in operator feast-runtime; do
  image="$OPERATOR_IMAGE" name=operator key="$(operator_image_key "$src" "$base_key")"
  [ "$target" = feast-runtime ] && image="$FEAST_IMAGE" name=feast key="$(feast_image_key "$src" "$base_key")"
  if archive[$target]="$(reuse "$name" "$key")"; then
    log "$target: reusing hack/provision-node.sh's build of the same inputs (key $key)"
    continue
  fi
  archive[$target]=""
  log "building $target -> $image (log: $DIST/build-$target.log)"
  mkdir -p "$DIST"
  (cd "$src" && bh bud --pull="$pull" --isolation chroot --layers --target "$target" -t "$image" \
    -v "$CA_BUNDLE:$CA_BUNDLE:ro" -f Dockerfile . >"$DIST/build-$target.log" 2>&1) ||
    { tail -n 40 "$DIST/build-$target.log" >&2; die "building $target failed"; }
done

# --- 4. chart -----------------------------------------------------------------------------------
chart="$src/charts/featurestore-operator"
"$VENV/bin/python" - "$chart/values.yaml" "$REGISTRY/featurestore-operator" "$FEAST_IMAGE" <<'PY'
import re, sys
path, repo, feast = sys.argv[1:]
text = open(path).read()
text, n1 = re.subn(r"(?m)^(  repository: )featurestore-operator$", rf"\g<1>{repo}", text)
text, n2 = re.subn(r'(?m)^(  feast: )""', rf'\g<1>"{feast}"', text)
assert n1 == n2 == 1, "values.yaml: image.repository / images.feast lines not found"
open(path, "w").write(text)
PY
"$HELM" lint "$chart" >/dev/null
"$HELM" package "$chart" --version "$VERSION" --app-version "$VERSION" -d "$DIST" >&2
CHART_TGZ="$DIST/featurestore-operator-$VERSION.tgz"

# --- 5. push ------------------------------------------------------------------------------------
tls=()
helm_plain=()
[ "$plain" = 1 ] && { tls=(--tls-verify=false); helm_plain=(--plain-http); }
origin=()
for target in operator feast-runtime; do
  image="$OPERATOR_IMAGE"
  [ "$target" = feast-runtime ] && image="$FEAST_IMAGE"
  log "pushing $image"
  if [ -n "${archive[$target]}" ]; then
    skopeo copy -q "${tls[@]/--tls-verify/--dest-tls-verify}" "docker-archive:${archive[$target]}" "docker://$image" >&2
    origin+=("reused")
  else
    bh push -q "${tls[@]}" "$image" "docker://$image" >&2
    origin+=("built")
  fi
done
log "pushing the chart to oci://$REGISTRY/charts"
"$HELM" push "$CHART_TGZ" "oci://$REGISTRY/charts" "${helm_plain[@]}" >&2

echo "release $VERSION (tag v$VERSION) in $(( $(date +%s) - START_TS ))s:"
echo "  image  $OPERATOR_IMAGE (${origin[0]})"
echo "  image  $FEAST_IMAGE (${origin[1]})"
echo "  chart  oci://$REGISTRY/charts/featurestore-operator --version $VERSION ($CHART_TGZ)"
