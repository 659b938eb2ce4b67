#!/usr/bin/env bash
# A local OCI registry for releases and the e2e tier: Debian's docker-registry (Docker Distribution
# 2.8), plain HTTP on the loopback address only (never a routable one), storage under $FSO_CACHE.
#   bash hack/local-registry.sh start [PORT]   idempotent; prints HOST:PORT (default 127.0.0.1:5000)
#   bash hack/local-registry.sh stop
# Plain HTTP: buildah pushes with --tls-verify=false, helm with --plain-http, and containerd pulls
# through a hosts.toml naming http://HOST:PORT (tests/support/node.py; containerd's CRI plugin also
# defaults to plain HTTP for a loopback address). A registry others reach must
# serve TLS instead (Distribution's http.tls.certificate/key).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FSO_CACHE="${FSO_CACHE:-$HOME/.cache/featurestore-operator}"
DIR="$FSO_CACHE/registry"
PORT="${2:-${FSO_REGISTRY_PORT:-5000}}"
ADDR="127.0.0.1:$PORT"
mkdir -p "$DIR/data"

case "${1:-}" in
  start)
    if ! command -v docker-registry >/dev/null; then
      # shellcheck source=lib/apt.sh
      . "$ROOT/hack/lib/apt.sh"
      apt_get_locked update -qq </dev/null
      apt_get_locked install -y -qq --no-install-recommends docker-registry </dev/null >/dev/null
    fi
    if ! curl -fsS "http://$ADDR/v2/" >/dev/null 2>&1; then
      cat >"$DIR/config-$PORT.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $DIR/data}, delete: {enabled: true}}
http: {addr: "$ADDR"}
YAML
      setsid docker-registry serve "$DIR/config-$PORT.yml" >"$DIR/registry-$PORT.log" 2>&1 </dev/null &
      echo $! >"$DIR/registry-$PORT.pid"
      for _ in $(seq 50); do curl -fsS "http://$ADDR/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
      curl -fsS "http://$ADDR/v2/" >/dev/null || { cat "$DIR/registry-$PORT.log" >&2; exit 1; }
    fi
    echo "$ADDR"
    ;;
  stop)
    pid="$(cat "$DIR/registry-$PORT.pid" 2>/dev/null || true)"
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -f "$DIR/registry-$PORT.pid"
    ;;
  *) echo "usage: $0 start|stop [PORT]" >&2; exit 2 ;;
esac
