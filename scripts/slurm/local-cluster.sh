#!/usr/bin/env bash
# A real single-node SLURM cluster on localhost, for videmo's tests and for trying `videmo submit`
# on a laptop. Debian/Ubuntu, as root, no systemd needed.
#
#   bash scripts/slurm/local-cluster.sh start    # install munge + slurm if missing, start, wait idle
#   bash scripts/slurm/local-cluster.sh stop     # cancel jobs, stop the daemons by PID
#   bash scripts/slurm/local-cluster.sh status   # exit 0 when up and idle
#
#   VIDEMO_SLURM_DIR      state, spool, logs, pidfile (default: $TMPDIR/videmo-slurm)
#   VIDEMO_SLURM_TIMEOUT  seconds to wait for each daemon and the idle node (default 60)
#
# It writes /etc/slurm/slurm.conf (and a munge key when there is none): use it on a throwaway
# machine or container, not on a host that is part of a real cluster. What it solves:
# munged's run dir, a default memory per CPU (else every job takes the whole node and runs
# alone), no scheduling delay for arrays, 127.0.0.1 as the node address (no DNS), no cgroups
# (proctrack/linuxproc), ended jobs remembered for an hour (MinJobAge: there is no accounting,
# and a busy machine may take longer than the default 5 minutes for an array and its merge),
# and daemons whose output goes to files so they never hold the
# caller's pipes (a CI step would wait for EOF forever). Daemons are stopped by the PIDs this
# script recorded, never by name.
set -euo pipefail
BASE=${VIDEMO_SLURM_DIR:-${TMPDIR:-/tmp}/videmo-slurm}
TIMEOUT=${VIDEMO_SLURM_TIMEOUT:-60}
PIDS=$BASE/run/pids
NODE=$(hostname -s)
say() { echo "local-cluster: $*"; }
wait_for() { # wait_for WHAT CMD...: retry CMD every 0.2 s for up to $TIMEOUT s
  local what=$1; shift
  for ((i = 0; i < TIMEOUT * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  say "timed out waiting for $what; logs in $BASE/log" >&2
  tail -n 20 "$BASE"/log/* >&2 || true
  return 1
}
node_idle() { [ "$(sinfo -h -n "$NODE" -o %T 2>/dev/null)" = idle ]; }
all_alive() { [ -s "$PIDS" ] && while read -r _ p; do kill -0 "$p" || return 1; done <"$PIDS"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# daemon NAME PIDFILE CMD...: start a self-daemonising program, record "NAME PID"
daemon() {
  local name=$1 pf=$2; shift 2
  rm -f "$pf"
  "$@" </dev/null >>"$BASE/log/$name.out" 2>&1
  wait_for "$name pidfile" test -s "$pf"
  echo "$name $(cat "$pf")" >>"$PIDS"
}

install_packages() {
  local pkgs=(munge slurmctld slurmd slurm-client)
  if [ "$(dpkg-query -W -f='${Status}\n' "${pkgs[@]}" 2>/dev/null | grep -c 'ok installed')" \
       = ${#pkgs[@]} ]; then return 0; fi
  command -v apt-get >/dev/null || { say "apt-get not found: install ${pkgs[*]} yourself" >&2; exit 3; }
  say "installing ${pkgs[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # without systemd the packages' postinst cannot start the services, which is what we want
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

start() {
  [ "$(id -u)" = 0 ] || { say "must run as root (it installs packages and runs the daemons)" >&2; exit 3; }
  if all_alive 2>/dev/null && node_idle; then say "already running ($PIDS)"; return 0; fi
  [ -s "$PIDS" ] && stop  # half up from an earlier call: start clean
  for port in 6817 6818; do
    if port_open $port; then say "port $port is taken by a process not in $PIDS; stop it first" >&2; exit 1; fi
  done
  install_packages
  local t0=$SECONDS
  mkdir -p "$BASE"/{state,spool,log,run} /run/munge /etc/slurm
  chown munge:munge /run/munge
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  # CPUs and memory as slurmd sees them: a RealMemory above the real one makes the node INVALID
  local hw
  hw=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')
  cat >/etc/slurm/slurm.conf <<EOF
# written by videmo scripts/slurm/local-cluster.sh
ClusterName=videmo-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerParameters=batch_sched_delay=0
KillWait=5
MinJobAge=3600
NodeName=$NODE NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  : >"$PIDS"
  daemon munged /run/munge/munged.pid runuser -u munge -- /usr/sbin/munged
  wait_for munged bash -c 'munge -n | unmunge'
  daemon slurmctld "$BASE/run/slurmctld.pid" /usr/sbin/slurmctld -c  # -c: forget old jobs
  wait_for slurmctld scontrol ping
  daemon slurmd "$BASE/run/slurmd.pid" /usr/sbin/slurmd
  wait_for "node $NODE idle" node_idle
  say "up: node $NODE idle after $((SECONDS - t0)) s; pids in $PIDS"
}

stop() {
  [ -s "$PIDS" ] || { say "not running (no $PIDS)"; return 0; }
  pid_of() { awk -v n="$1" '$1 == n {print $2}' "$PIDS"; }
  local jobs
  # squeue needs a live slurmctld (it takes ~9 s to give up otherwise)
  if kill -0 "$(pid_of slurmctld)" 2>/dev/null && jobs=$(squeue -h -o %i) && [ -n "$jobs" ]; then
    # shellcheck disable=SC2086
    scancel $jobs
    for _ in $(seq 150); do
      [ -z "$(squeue -h)" ] || ! kill -0 "$(pid_of slurmd)" 2>/dev/null && break; sleep 0.2
    done
  fi
  tac "$PIDS" | while read -r name pid; do  # reverse start order: slurmd, slurmctld, munged
    if [ "$(ps -o comm= -p "$pid" 2>/dev/null)" != "$name" ]; then say "$name ($pid) not running"; continue; fi
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then say "$name ($pid) ignored SIGTERM; SIGKILL"; kill -9 "$pid"; fi
    say "stopped $name ($pid)"
  done
  rm -f "$PIDS"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) all_alive 2>/dev/null && say "up ($PIDS)" || { say "not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
