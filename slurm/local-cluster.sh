#!/usr/bin/env bash
# local-cluster.sh - a throw-away single-node Slurm (Debian slurmctld + slurmd, auth/none) in one
# scratch folder, to try the scripts in slurm/ or to test them (tests/mpi/test_slurm.sh).
#
#   bash slurm/local-cluster.sh start DIR    # writes DIR/slurm.conf, starts both daemons as root,
#                                            # waits until the node is idle, prints the export line
#   export SLURM_CONF=DIR/slurm.conf         # then sbatch, squeue, scontrol ... talk to it
#   bash slurm/local-cluster.sh stop DIR     # stops the two daemons by the process ids it recorded
#
# Needs root (the daemons run as SlurmUser=root) and the Debian packages slurmctld, slurmd and
# slurm-client (22.05; auth/none was removed in later releases, where a site uses munge).  Ports
# are picked free at start, so it does not collide with another Slurm on the machine.  NodeName
# and SlurmctldHost are `hostname -s`; CPUs and memory come from `slurmd -C`.  Not for production:
# no accounting, no cgroups, no authentication.
set -u
cmd=${1:-}; T=${2:-}
die() { echo "local-cluster: $1" >&2; exit 1; }
[ -n "$cmd" ] && [ -n "$T" ] || die "usage: local-cluster.sh start|stop DIR; expected a command and a scratch folder"

free_port() { # a TCP port nobody listens on, from a range keyed by our pid
  local p
  for p in $(seq $((20000 + ($$ * 7) % 20000)) $((20000 + ($$ * 7) % 20000 + 200))); do
    ss -ltnH 2>/dev/null | awk '{print $4}' | grep -q ":$p\$" || { echo "$p"; return; }
  done
  die "no free TCP port found; expected one in 20000-40200"
}

stop() {
  local f pid
  for f in "$T/d.pid" "$T/ctld.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    rm -f "$f"
  done
  return 0
}

case $cmd in
start)
  [ "$(id -u)" = 0 ] || die "start: not root; expected root (the daemons run as SlurmUser=root)"
  for b in slurmctld slurmd sbatch scontrol sinfo; do command -v $b >/dev/null || die "start: $b not found; expected the Debian packages slurmctld slurmd slurm-client (make deps)"; done
  mkdir -p "$T/spool/ctld" "$T/spool/d" "$T/run" "$T/log" || die "start: cannot create $T; expected a writable folder"
  T=$(cd "$T" && pwd)
  host=$(hostname -s)
  cpus=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -1)
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)
  ctld_port=$(free_port); d_port=$((ctld_port + 1))
  cat >"$T/slurm.conf" <<CONF
ClusterName=boundopt-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
# A requeued job waits cred_expire seconds (default 120) before it can start again, so that the
# credentials revoked when its previous run was killed have expired; 10 s keeps tests short.
AuthInfo=cred_expire=10
StateSaveLocation=$T/spool/ctld
SlurmdSpoolDir=$T/spool/d
SlurmctldPidFile=$T/run/slurmctld.pid
SlurmdPidFile=$T/run/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$T/log/jobcomp.txt
ReturnToService=2
MinJobAge=600
KillWait=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$(( mem > 2000 ? mem / 2 : mem )) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  export SLURM_CONF=$T/slurm.conf
  slurmctld -D -f "$SLURM_CONF" >"$T/log/ctld.out" 2>&1 & echo $! >"$T/ctld.pid"
  slurmd -D -f "$SLURM_CONF" >"$T/log/d.out" 2>&1 & echo $! >"$T/d.pid"
  for _ in $(seq 1 150); do
    state=$(sinfo -h -o %T 2>/dev/null | head -1)
    [ "$state" = idle ] && { echo "export SLURM_CONF=$SLURM_CONF"; exit 0; }
    kill -0 "$(cat "$T/ctld.pid")" 2>/dev/null && kill -0 "$(cat "$T/d.pid")" 2>/dev/null || break
    sleep 0.2
  done
  echo "local-cluster: the node did not become idle (state '${state:-none}'); logs:" >&2
  tail -5 "$T/log/ctld.out" "$T/log/d.out" "$T/log/slurmctld.log" "$T/log/slurmd.log" 2>/dev/null >&2
  stop
  exit 1 ;;
stop) stop ;;
*) die "'$cmd' is not a command; expected start or stop" ;;
esac
