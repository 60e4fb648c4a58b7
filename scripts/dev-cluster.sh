#!/usr/bin/env bash
# A real Slurm cluster on one machine, for CI and for trying facepipe's Slurm executor: munge, slurmctld and two
# slurmd nodes (n1, n2 on 127.0.0.1, each on its own port) with one fake GPU each, in partition "dev".
# Needs root and Debian's packages slurmctld slurmd slurm-client munge. No systemd: the daemons are started by hand.
#
#   sudo scripts/dev-cluster.sh start    start (or check) the cluster; waits until both nodes take jobs
#   scripts/dev-cluster.sh status        daemons, nodes and queue; exit 0 only when the cluster takes jobs
#   sudo scripts/dev-cluster.sh stop     cancel every job, stop the daemons, remove state and the config link
#   scripts/dev-cluster.sh env           print `export SLURM_CONF=...` (see "Finding the cluster" below)
#   scripts/dev-cluster.sh logs          tail the daemons' logs
#
# Finding the cluster: every file the script writes lives in $FACEPIPE_CLUSTER_DIR (default
# /var/lib/facepipe-dev-cluster): etc/ (slurm.conf, gres.conf), state/, spool/, run/ (pid files), log/. Slurm's
# clients (sbatch, squeue, ... and so facepipe and its tests) look for /etc/slurm/slurm.conf unless SLURM_CONF says
# otherwise, so `start` links /etc/slurm/slurm.conf to our file when that path is free (or already our link), and
# `stop` removes the link. When /etc/slurm/slurm.conf belongs to a real installation the script leaves it alone,
# says so, and clients need `eval "$(scripts/dev-cluster.sh env)"`.
#
# Settings (environment): FACEPIPE_CLUSTER_DIR, FACEPIPE_CLUSTER_PORT (slurmctld's port, default 17000; the nodes
# use the next two), FACEPIPE_CLUSTER_CPUS (CPUs each node declares, default 2: 4 one-CPU jobs at once),
# FACEPIPE_CLUSTER_WAIT (seconds to wait for the nodes, default 60). A changed setting restarts the daemons.
set -euo pipefail

DIR=${FACEPIPE_CLUSTER_DIR:-/var/lib/facepipe-dev-cluster}
PORT=${FACEPIPE_CLUSTER_PORT:-17000}
CPUS=${FACEPIPE_CLUSTER_CPUS:-2}
WAIT=${FACEPIPE_CLUSTER_WAIT:-60}
CONF=$DIR/etc/slurm.conf
SYSCONF=/etc/slurm/slurm.conf
NODES=(n1 n2)
PARTITION=dev
MUNGE_PID=/run/munge/munged.pid
# Daemons and clients of this script always use our file, whatever the link says.
export SLURM_CONF=$CONF

say() { printf 'dev-cluster: %s\n' "$*"; }
die() {
  printf 'dev-cluster: error: %s\n' "$*" >&2
  exit 1
}
# stop removes folders under DIR: it must be a real folder of its own.
[[ $DIR == /?* && $DIR != *..* && $(dirname "$DIR") != / ]] ||
  die "FACEPIPE_CLUSTER_DIR must be an absolute path at least two levels deep, got '$DIR'"

# alive PIDFILE NAME: the pid in PIDFILE is a running process called NAME. PID 1 on these machines does not reap,
# so a dead daemon stays a zombie: kill -0 and pgrep would call it alive, /proc/PID/status (State: Z) does not.
# A daemon may remove its pid file at any moment, so reading it must not fail loudly.
pid_in() { { tr -dc 0-9 <"$1"; } 2>/dev/null || true; }

alive() {
  local pid
  pid=$(pid_in "$1")
  [[ -n $pid && -r /proc/$pid/status ]] || return 1
  awk -v want="$2" '/^Name:/ { n = $2 } /^State:/ { s = $2 } END { exit !(n == want && s != "Z" && s != "X") }' \
    "/proc/$pid/status" 2>/dev/null
}

# stop_pid PIDFILE NAME: TERM, wait up to 10 s for it to die (a zombie counts as dead), then KILL.
stop_pid() {
  alive "$1" "$2" || {
    rm -f "$1"
    return 0
  }
  local pid i
  pid=$(pid_in "$1")
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "$1" "$2" || break
    sleep 0.1
  done
  if alive "$1" "$2"; then
    say "$2 (pid $pid) ignored TERM for 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

need_root() { [[ $(id -u) == 0 ]] || die "'$1' needs root (the daemons run as root and munged as user munge): sudo $0 $1"; }

# Every command the cluster needs, with the Debian package that brings it.
check_tools() {
  local -A pkg=([munged]=munge [munge]=munge [unmunge]=munge [slurmctld]=slurmctld [slurmd]=slurmd
    [sinfo]=slurm-client [sbatch]=slurm-client [squeue]=slurm-client [scontrol]=slurm-client [scancel]=slurm-client
    [runuser]=util-linux [mknod]=coreutils)
  local missing=() pkgs=() c
  for c in munged munge unmunge slurmctld slurmd sinfo sbatch squeue scontrol scancel runuser mknod; do
    if ! command -v "$c" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$c ]]; then
      missing+=("$c")
      [[ " ${pkgs[*]} " == *" ${pkg[$c]} "* ]] || pkgs+=("${pkg[$c]}")
    fi
  done
  ((${#missing[@]} == 0)) ||
    die "missing commands: ${missing[*]}. Install Debian's packages: apt-get update && apt-get install -y --no-install-recommends ${pkgs[*]}"
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  if munge_works; then
    return 0
  fi
  if alive "$MUNGE_PID" munged; then
    die "munged is running (pid $(pid_in "$MUNGE_PID")) but 'munge -n | unmunge' fails: see /var/log/munge/munged.log"
  fi
  id munge >/dev/null 2>&1 || die "user 'munge' does not exist: reinstall Debian's munge package"
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge /etc/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged --force
  local i
  for ((i = 0; i < 50; i++)); do
    munge_works && {
      echo started >"$DIR/run/munged.ours"
      say "munged started"
      return 0
    }
    sleep 0.1
  done
  tail -n 20 /var/log/munge/munged.log >&2 2>/dev/null || true
  die "munged did not come up: 'munge -n | unmunge' still fails (log above: /var/log/munge/munged.log)"
}

# write_config: writes gres.conf, and slurm.conf.new; true when that differs from slurm.conf.
write_config() {
  local tmp=$CONF.new nodes
  nodes=$(
    IFS=,
    echo "${NODES[*]}"
  )
  {
    cat <<EOF
# Written by facepipe's scripts/dev-cluster.sh; rewritten on every start.
ClusterName=fpdev
SlurmctldHost=localhost
SlurmctldPort=$PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default every job is given all of a node's memory and jobs run one at a time.
DefMemPerCPU=1000
SchedulerType=sched/backfill
# Start jobs as soon as they are submitted (the default delay costs about 2 s per job).
SchedulerParameters=batch_sched_delay=0
# The node sizes below are what we declare, whatever this machine has.
SlurmdParameters=config_overrides
MinJobAge=300
KillWait=5
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd-%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
AccountingStorageType=accounting_storage/none
GresTypes=gpu
EOF
    local i=0 n
    for n in "${NODES[@]}"; do
      echo "NodeName=$n NodeHostname=localhost NodeAddr=127.0.0.1 Port=$((PORT + 1 + i)) CPUs=$CPUS RealMemory=$((CPUS * 2000)) Gres=gpu:fake:1 State=UNKNOWN"
      i=$((i + 1))
    done
    echo "PartitionName=$PARTITION Nodes=$nodes Default=YES MaxTime=INFINITE State=UP"
  } >"$tmp"
  {
    echo "# Written by facepipe's scripts/dev-cluster.sh. gres refuses plain files: the fake GPUs are char devices."
    echo "AutoDetect=off"
    local i=0 n
    for n in "${NODES[@]}"; do
      echo "NodeName=$n Name=gpu Type=fake File=/dev/fakegpu$i"
      i=$((i + 1))
    done
  } >"$DIR/etc/gres.conf"
  if [[ -f $CONF ]] && cmp -s "$tmp" "$CONF"; then
    rm -f "$tmp"
    return 1
  fi
  return 0
}

fake_gpus() {
  local i
  for ((i = 0; i < ${#NODES[@]}; i++)); do
    [[ -c /dev/fakegpu$i ]] && continue
    rm -f "/dev/fakegpu$i"
    mknod "/dev/fakegpu$i" c 1 3 || die "cannot create the fake GPU /dev/fakegpu$i (mknod c 1 3)"
  done
}

link_config() {
  if [[ -L $SYSCONF && $(readlink "$SYSCONF") == "$CONF" ]]; then
    return 0
  fi
  if [[ -e $SYSCONF || -L $SYSCONF ]]; then
    say "$SYSCONF belongs to another installation and was left alone. Point clients at this cluster with:"
    say "  eval \"\$($0 env)\""
    return 0
  fi
  install -d /etc/slurm
  ln -s "$CONF" "$SYSCONF"
}

any_slurm_alive() {
  local n
  alive "$DIR/run/slurmctld.pid" slurmctld && return 0
  for n in "${NODES[@]}"; do alive "$DIR/run/slurmd-$n.pid" slurmd && return 0; done
  return 1
}

log_tail() {
  say "last lines of $1:" >&2
  tail -n 15 "$1" >&2 2>/dev/null || true
}

start_slurmctld() {
  alive "$DIR/run/slurmctld.pid" slurmctld && return 0
  slurmctld -f "$CONF" || {
    log_tail "$DIR/log/slurmctld.log"
    die "slurmctld failed to start"
  }
  local i
  for ((i = 0; i < 150; i++)); do
    scontrol ping 2>/dev/null | grep -q 'is UP' && return 0
    if ((i > 10)) && ! alive "$DIR/run/slurmctld.pid" slurmctld; then
      log_tail "$DIR/log/slurmctld.log"
      die "slurmctld exited right after starting (is port $PORT taken? FACEPIPE_CLUSTER_PORT picks another)"
    fi
    sleep 0.1
  done
  log_tail "$DIR/log/slurmctld.log"
  die "slurmctld does not answer 'scontrol ping' after 15 s"
}

start_slurmd() {
  local n
  for n in "${NODES[@]}"; do
    alive "$DIR/run/slurmd-$n.pid" slurmd && continue
    slurmd -f "$CONF" -N "$n" || {
      log_tail "$DIR/log/slurmd-$n.log"
      die "slurmd for node $n failed to start"
    }
  done
}

# Nodes that take jobs: idle, mixed, allocated or completing, and responding (no '*' suffix).
ready_nodes() { sinfo -h -N -p "$PARTITION" -o '%N %T' 2>/dev/null | awk '$2 ~ /^(idle|mixed|allocated|completing)$/ { print $1 }' | sort -u | wc -l; }

wait_nodes() {
  local deadline=$((SECONDS + WAIT))
  while ((SECONDS < deadline)); do
    (($(ready_nodes) == ${#NODES[@]})) && return 0
    sleep 0.1
  done
  sinfo -N -p "$PARTITION" -o '%N %T %E' >&2 || true
  local n
  for n in "${NODES[@]}"; do log_tail "$DIR/log/slurmd-$n.log"; done
  die "nodes ${NODES[*]} are not all idle after ${WAIT} s (states and reasons above)"
}

cmd_start() {
  need_root start
  check_tools
  install -d -m 0755 "$DIR" "$DIR/etc" "$DIR/state" "$DIR/spool" "$DIR/run" "$DIR/log"
  start_munge
  if write_config; then
    # Stop what runs under the old file while the clients can still reach it.
    if any_slurm_alive; then
      say "configuration changed: restarting the daemons"
      stop_slurm
    fi
    mv "$CONF.new" "$CONF"
  fi
  fake_gpus
  link_config
  start_slurmctld
  start_slurmd
  wait_nodes
  say "up: partition $PARTITION, nodes ${NODES[*]} (1 fake GPU each), config $CONF"
}

stop_slurm() {
  local n i
  if alive "$DIR/run/slurmctld.pid" slurmctld; then
    timeout 10 scancel --quiet --partition="$PARTITION" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null) ]] && break
      sleep 0.1
    done
  fi
  for n in "${NODES[@]}"; do stop_pid "$DIR/run/slurmd-$n.pid" slurmd; done
  # A job step whose slurmd is gone: its slurmstepd would linger. Only ours run on this machine.
  for i in /proc/[0-9]*/status; do
    if awk '/^Name:/ { n = $2 } /^State:/ { s = $2 } END { exit !(n == "slurmstepd" && s != "Z") }' "$i" 2>/dev/null; then
      kill -KILL "$(basename "$(dirname "$i")")" 2>/dev/null || true
    fi
  done
  stop_pid "$DIR/run/slurmctld.pid" slurmctld
}

cmd_stop() {
  need_root stop
  stop_slurm
  # munged is stopped only when this script started it; a system munged serves other things too.
  if [[ -f $DIR/run/munged.ours ]]; then
    stop_pid "$MUNGE_PID" munged
    rm -f "$DIR/run/munged.ours"
  fi
  if [[ -L $SYSCONF && $(readlink "$SYSCONF") == "$CONF" ]]; then rm -f "$SYSCONF"; fi
  local i
  for ((i = 0; i < ${#NODES[@]}; i++)); do [[ -c /dev/fakegpu$i ]] && rm -f "/dev/fakegpu$i"; done
  # Keep the logs for a post-mortem; everything else starts fresh next time.
  rm -rf "${DIR:?}/etc" "${DIR:?}/state" "${DIR:?}/spool" "${DIR:?}/run"
  say "stopped (logs kept in $DIR/log)"
}

cmd_status() {
  local ok=0 n
  report() { if alive "$1" "$2"; then say "$3: running (pid $(pid_in "$1"))"; else
    say "$3: not running"
    ok=1
  fi; }
  if munge_works; then say "munge: works"; else
    say "munge: 'munge -n | unmunge' fails"
    ok=1
  fi
  report "$DIR/run/slurmctld.pid" slurmctld slurmctld
  for n in "${NODES[@]}"; do report "$DIR/run/slurmd-$n.pid" slurmd "slurmd $n"; done
  if [[ -L $SYSCONF && $(readlink "$SYSCONF") == "$CONF" ]]; then say "clients: $SYSCONF -> $CONF"; else
    say "clients: need SLURM_CONF=$CONF (eval \"\$($0 env)\")"
  fi
  if ((ok == 0)); then
    sinfo -N -p "$PARTITION" -o '%N %T %G' || ok=1
    squeue || ok=1
    (($(ready_nodes) == ${#NODES[@]})) || {
      say "not every node takes jobs"
      ok=1
    }
  fi
  if ((ok != 0)); then say "not up: sudo $0 start"; fi
  return $ok
}

cmd_logs() {
  local n files=("$DIR/log/slurmctld.log")
  for n in "${NODES[@]}"; do files+=("$DIR/log/slurmd-$n.log"); done
  tail -n "${1:-20}" "${files[@]}" /var/log/munge/munged.log 2>/dev/null || true
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) echo "export SLURM_CONF=$CONF" ;;
logs) cmd_logs "${2:-20}" ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  [[ -z ${1:-} || $1 == -h || $1 == --help || $1 == help ]] || exit 2
  ;;
esac
