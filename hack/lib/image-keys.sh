# shellcheck shell=bash
# Sourced by hack/provision-node.sh and hack/release.sh: the content keys of the two Dockerfile
# images. Both scripts compute them with these functions, so a release whose tree has the same
# inputs as the tree hack/provision-node.sh built reuses that build ($FSO_CACHE/node/images/NAME.tar
# with its NAME.key) instead of building again.
#   base_image_key ROOT                 the Dockerfile's base image (debootstrap recipe + PYTHON_IMAGE)
#   operator_image_key ROOT BASE_KEY    operator/ sources, pyproject.toml, Dockerfile, .dockerignore,
#                                       images/operator.lock (not README.md: it only feeds the wheel's
#                                       description, so a README edit does not rebuild the image)
#   feast_image_key ROOT BASE_KEY       Dockerfile (it pins FEAST_VERSION), images/feast-runtime.*

#: the recipe of the debootstrap'd rootfs the base image is made of (bump it when that recipe changes)
FSO_ROOTFS_KEY="bookworm-minbase-python3-r1"

_key_of() { sha256sum | cut -c1-16; }

# dockerfile_python_image ROOT: the Dockerfile's ARG PYTHON_IMAGE, fully qualified
dockerfile_python_image() {
  local image
  image="$(sed -n 's/^ARG PYTHON_IMAGE=//p' "$1/Dockerfile")"
  [ -n "$image" ] || return 1
  case "$image" in */*) echo "$image" ;; *) echo "docker.io/library/$image" ;; esac
}

base_image_key() {
  echo "$FSO_ROOTFS_KEY $(dockerfile_python_image "$1")" | _key_of
}

operator_image_key() {
  (cd "$1" && find operator pyproject.toml Dockerfile .dockerignore images/operator.lock -type f \
    ! -path '*/__pycache__/*' ! -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum | cat - <(echo "$2") | _key_of)
}

feast_image_key() {
  (cat "$1/Dockerfile" "$1"/images/feast-runtime.*; echo "$2") | _key_of
}
