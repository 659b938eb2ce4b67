# Sourced by hack/*.sh: apt-get that waits (bounded, with a message) for another apt/dpkg process
# - unattended-upgrades on a fresh machine, a second set-up - instead of failing at once.
#   FSO_APT_LOCK_TIMEOUT  seconds to wait for the locks (default 600)
#   FSO_DPKG_LOCKS        space-separated lock files (default: dpkg's and apt's; tests point it elsewhere)

FSO_DPKG_LOCKS="${FSO_DPKG_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}"

# Prints the pid holding FILE (dpkg/apt take fcntl locks, flock(1) takes flock locks: both are
# probed), or nothing when it is free or absent.
_lock_holder() {
  python3 - "$1" <<'PY'
import fcntl, os, struct, sys
path = sys.argv[1]
try:
    fd = os.open(path, os.O_RDWR)
except OSError:
    sys.exit(0)
# F_GETLK names the holder of a POSIX lock (what dpkg and apt take)
probe = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)
kind, _, _, _, pid = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, probe))
if kind != fcntl.F_UNLCK:
    print(pid); sys.exit(0)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("?")
PY
}

# wait_for_dpkg_lock [TIMEOUT]: 0 once every lock is free; 1 (with a message) after TIMEOUT s.
wait_for_dpkg_lock() {
  local timeout="${1:-${FSO_APT_LOCK_TIMEOUT:-600}}" start now holder lock said=0
  start=$(date +%s)
  while :; do
    holder=""
    for lock in $FSO_DPKG_LOCKS; do
      holder=$(_lock_holder "$lock")
      [ -n "$holder" ] && break
    done
    [ -z "$holder" ] && return 0
    now=$(date +%s)
    if [ $((now - start)) -ge "$timeout" ]; then
      printf '[apt] %s is still held by pid %s after %ss; giving up (FSO_APT_LOCK_TIMEOUT)\n' "$lock" "$holder" "$timeout" >&2
      return 1
    fi
    if [ $(((now - start) / 30)) -ge "$said" ]; then
      local what=""
      [ "$holder" != "?" ] && what=$(tr '\0' ' ' <"/proc/$holder/cmdline" 2>/dev/null | cut -c1-80)
      printf '[apt] waiting for %s (held by pid %s%s), up to %ss\n' "$lock" "$holder" "${what:+: $what}" "$timeout" >&2
      said=$((said + 1))
    fi
    sleep 1
  done
}

# apt_get_locked ARGS...: apt-get once the locks are free; apt's own DPkg::Lock::Timeout covers
# the race with a process that takes the lock between our check and apt-get's.
apt_get_locked() {
  wait_for_dpkg_lock || return 1
  apt-get -o DPkg::Lock::Timeout="${FSO_APT_LOCK_TIMEOUT:-600}" "$@"
}
