#!/usr/bin/env bash
# Lock the Python dependencies of both images (Dockerfile), with hashes:
#   images/operator.lock        the operator's [project.dependencies] in pyproject.toml
#   images/feast-runtime.lock   images/feast-runtime.in
# The Dockerfile installs them with `pip install --require-hashes` and fails the build when the
# lock no longer satisfies pyproject.toml / feast-runtime.in (a stale lock).
#
# uv (PyPI, pinned below) resolves for Python 3.11 (the Dockerfile's PYTHON_IMAGE) on every
# platform (--universal: amd64 and arm64 builds use the same lock). Versions already in a lock are
# kept (uv prefers the pins of its output file), so re-running it changes nothing until an input
# changes: `bash hack/lock-images.sh --check` fails when a lock is stale. Upgrade every pin on
# purpose with `bash hack/lock-images.sh --upgrade`.
# Needs PyPI (pip and uv reach it as configured on the machine).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FSO_CACHE="${FSO_CACHE:-$HOME/.cache/featurestore-operator}"
VENV="${FSO_VENV:-$FSO_CACHE/venv}"
UV_VERSION=0.13.10
mode="${1:-}"
case "$mode" in "" | --check | --upgrade) ;; *) echo "usage: $0 [--check|--upgrade]" >&2; exit 2 ;; esac

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if [ "$("$VENV/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  "$VENV/bin/pip" install -q "uv==$UV_VERSION"
fi
# uv reads the host's CA bundle (the TLS-intercepting proxy of some build machines) like pip does
export UV_NATIVE_TLS=1 UV_PYTHON_DOWNLOADS=never

lock() { # lock INPUT OUTPUT
  local out="$2"
  [ "$mode" = --check ] && { cp "$ROOT/$2" "$ROOT/$2.check" 2>/dev/null || : >"$ROOT/$2.check"; out="$2.check"; }
  (cd "$ROOT" && "$VENV/bin/uv" pip compile -q --universal --python-version 3.11 --generate-hashes \
    ${mode:+$([ "$mode" = --upgrade ] && echo --upgrade)} \
    --custom-compile-command "bash hack/lock-images.sh" -o "$out" "$1")
  if [ "$mode" = --check ]; then
    if ! diff -u "$ROOT/$2" "$ROOT/$out" >&2; then
      rm -f "$ROOT/$out"
      echo "[lock-images] $2 is stale: run bash hack/lock-images.sh and commit it" >&2
      return 1
    fi
    rm -f "$ROOT/$out"
  fi
  echo "[lock-images] $2: $(grep -c '^[a-z0-9]' "$ROOT/$2") packages"
}
lock pyproject.toml images/operator.lock
lock images/feast-runtime.in images/feast-runtime.lock
