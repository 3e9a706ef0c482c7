#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests (tests/test_slurm.py) and for trying the submitter.
# Needs root; installs Debian's slurmctld, slurmd, slurm-client and munge when they are missing.
#   bash scripts/slurm/test_cluster.sh start [dir]    # prints "export SLURM_CONF=<dir>/slurm.conf"
#   bash scripts/slurm/test_cluster.sh stop [dir]
# The configuration (<dir>/slurm.conf, from scripts/slurm/test_cluster.conf) keeps finished jobs visible to
# scontrol for an hour (no accounting database) and cancels jobs whose dependencies can never be satisfied.
set -euo pipefail
action="${1:?usage: test_cluster.sh start|stop [dir]}"
dir="$(realpath -m "${2:-${LPR_SLURM_DIR:-/tmp/lpr-slurm}}")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

stop() {
  local daemon pid
  for daemon in slurmd slurmctld; do
    if [ -f "$dir/$daemon.pid" ]; then
      pid="$(cat "$dir/$daemon.pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$dir/$daemon.pid"
    fi
  done
}

case "$action" in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "error: unknown action $action (start or stop)" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { echo "error: the test cluster needs root (it starts munged, slurmctld and slurmd)" >&2; exit 2; }
if ! command -v slurmctld > /dev/null || ! command -v slurmd > /dev/null || ! command -v sbatch > /dev/null \
  || ! command -v munged > /dev/null; then
  echo "[slurm] installing slurmctld slurmd slurm-client munge" >&2
  apt-get update -qq > /dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge > /dev/null
fi

stop
mkdir -p "$dir/state" "$dir/spool"
node="$(hostname -s)"
cpus="$(nproc)"
memory_mb="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
sed -e "s|@DIR@|$dir|g" -e "s|@NODE@|$node|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEMORY_MB@|$memory_mb|g" \
  "$here/test_cluster.conf" > "$dir/slurm.conf"

# munge: one key per machine (the package creates it); the daemon runs once.
if ! pgrep -x munged > /dev/null; then
  [ -f /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || create-munge-key -f; }
  mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
  runuser -u munge -- munged 2>/dev/null || munged --force
fi
slurmctld -f "$dir/slurm.conf"
slurmd -f "$dir/slurm.conf"
export SLURM_CONF="$dir/slurm.conf"
for _ in $(seq 100); do
  if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
    echo "[slurm] one-node cluster up: node $node, $cpus CPUs; logs in $dir" >&2
    echo "export SLURM_CONF=$dir/slurm.conf"
    exit 0
  fi
  sleep 0.2
done
echo "error: the node did not come up; see $dir/slurmctld.log and $dir/slurmd.log" >&2
exit 1
