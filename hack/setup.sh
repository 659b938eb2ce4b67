#!/usr/bin/env bash
# Idempotent set-up of everything the demo and the tests need, cached outside the repo:
#   - Debian packages: redis-server, openssl, git, util-linux (unshare), build deps of the control plane
#   - a virtualenv with the operator and its test extras (feast[redis,gcp], fake-gcs-server, ...)
#   - the local Kubernetes control plane (kube-apiserver/controller-manager/etcd) and helm
# Safe with CI=true and no stdin. Re-runs take seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FSO_CACHE="${FSO_CACHE:-$HOME/.cache/featurestore-operator}"
VENV="${FSO_VENV:-$FSO_CACHE/venv}"
PYTHON="${PYTHON:-python3}"
export DEBIAN_FRONTEND=noninteractive
mkdir -p "$FSO_CACHE"

say() { printf '[setup] %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

# --- Debian packages -----------------------------------------------------------------------
# prometheus: for promtool, which checks the chart's alert rules (the server itself is not used)
# openssh-server: sshd for the git-over-ssh tests (tests/support/git_ssh.py)
# shellcheck: tests/unit/test_programs.py checks the shell programs render puts into pods
APT_PACKAGES=(redis-server openssl git util-linux ca-certificates prometheus openssh-server shellcheck)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  as_root bash -c '. "$0"; apt_get_locked update -qq' "$ROOT/hack/lib/apt.sh"
  as_root bash -c '. "$0"; shift; apt_get_locked "$@"' "$ROOT/hack/lib/apt.sh" - install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # tests start their own redis-server processes; the packaged service is not wanted
  if command -v systemctl >/dev/null 2>&1; then as_root systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
  as_root service redis-server stop >/dev/null 2>&1 || true
  as_root service prometheus stop >/dev/null 2>&1 || true
  as_root service ssh stop >/dev/null 2>&1 || true  # tests run their own sshd (tests/support/git_ssh.py)
fi

# --- virtualenv ------------------------------------------------------------------------------
stamp="$VENV/.fso-stamp"
want="$( (cat "$ROOT/pyproject.toml"; "$PYTHON" --version) | sha256sum | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating virtualenv $VENV (feast and friends: ~1-2 min the first time)"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q -e "$ROOT[test]"
  echo "$want" > "$stamp"
else
  # the repo may have moved (fresh clone in CI): keep the editable install pointing here
  if ! "$VENV/bin/python" -c "import featurestore_operator, sys; sys.exit(0 if featurestore_operator.__file__.startswith('$ROOT/') else 1)" 2>/dev/null; then
    "$VENV/bin/pip" install -q --no-deps -e "$ROOT"
  fi
  say "virtualenv up to date ($VENV)"
fi

# --- control plane + helm --------------------------------------------------------------------
bash "$ROOT/hack/provision-controlplane.sh"
say "ready: venv $VENV, cache $FSO_CACHE"
