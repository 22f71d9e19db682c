#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for testing the SLURM profile (tests/test_slurm.py).
#
#   bash scripts/slurm-cluster.sh start    # idempotent; waits until the node is idle
#   bash scripts/slurm-cluster.sh status   # exit 0 when the node takes jobs
#   bash scripts/slurm-cluster.sh env      # prints `export SLURM_CONF=...` for sbatch/squeue/sinfo
#   bash scripts/slurm-cluster.sh stop     # cancels jobs, stops the daemons this script started
#
# Needs root and Debian's packages: apt-get install slurmctld slurmd slurm-client munge
# State lives in $NORMROBUST_SLURM_DIR (default /tmp/normrobust-slurm): slurm.conf, gres.conf,
# logs, spool, pid files. Outside it: munged on its standard socket (/run/munge; a running
# munged is reused, else one is started and later stopped), /dev/fakegpu0-1, and slurmd's link
# /run/slurm/conf to its config cache (the cluster is configless: slurmd fetches slurm.conf from
# slurmctld, and srun inside a job finds it there). /etc/slurm is not touched; clients on this
# host use SLURM_CONF=<dir>/slurm.conf (or the link). One such cluster per machine.
#
# The node: this host (NodeAddr 127.0.0.1), CPUs from nproc, RealMemory a bit below the
# available memory, two stand-in GPUs (gres.conf: Name=gpu File=/dev/fakegpu[0-1], character
# devices made with mknod, major/minor of /dev/null). Partitions `debug` (default) and `gpu`.
# No accounting (sacct fails): MinJobAge is an hour, so squeue keeps finished jobs long enough
# for status queries. Ports: $NORMROBUST_SLURM_PORT (slurmctld, default 6817) and the next one.
set -euo pipefail

DIR=${NORMROBUST_SLURM_DIR:-/tmp/normrobust-slurm}
PORT=${NORMROBUST_SLURM_PORT:-6817}
TIMEOUT=${NORMROBUST_SLURM_TIMEOUT:-60}     # seconds to wait for each daemon / the node
CONF="$DIR/slurm.conf"
NODE=$(hostname -s)
PARTITION=debug
export SLURM_CONF="$CONF"

say() { echo "slurm-cluster: $*"; }
die() { echo "slurm-cluster: $1" >&2; exit "${2:-1}"; }

pid_alive() {  # pid_alive <pidfile>: the daemon it names is running
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

tail_log() {
    [ -f "$1" ] && { echo "--- last lines of $1:" >&2; tail -n "${2:-15}" "$1" >&2; } || true
}

wait_for() {  # wait_for <what> <command...>: retry for $TIMEOUT seconds
    local what=$1; shift
    local end=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.5
    done
}

node_state() {
    timeout 10 sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n 1 | tr -d '*~#!%$@^-' || true
}

node_ready() {
    case "$(node_state)" in idle | mixed | allocated | completing) return 0 ;; *) return 1 ;; esac
}

check_prereqs() {
    [ "$(id -u)" = 0 ] || die "must run as root (munged, slurmctld and slurmd are started here)" 2
    local missing=()
    for b in munged mungekey munge unmunge slurmctld slurmd sinfo sbatch squeue scontrol scancel runuser mknod; do
        command -v "$b" >/dev/null || missing+=("$b")
    done
    [ ${#missing[@]} = 0 ] ||
        die "missing ${missing[*]}; install with: apt-get install slurmctld slurmd slurm-client munge" 2
}

check_no_system_conf() {
    # srun inside a job reads /etc/slurm/slurm.conf before /run/slurm/conf/slurm.conf
    if [ -e /etc/slurm/slurm.conf ]; then
        die "/etc/slurm/slurm.conf exists (a real cluster's config?): jobs here would read it instead of this test cluster's" 2
    fi
}

make_fake_gpus() {
    for i in 0 1; do
        local dev=/dev/fakegpu$i
        if [ ! -c "$dev" ]; then
            rm -f "$dev"
            mknod -m 666 "$dev" c 1 3 || die "cannot create $dev with mknod (no CAP_MKNOD?)"
        fi
    done
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    # Slurm talks to munged on its standard socket (/run/munge/munge.socket.2): slurmd needs it
    # before it has fetched its config. A munged already answering there is used as is; else
    # one is started as the munge user with Debian's default paths (key /etc/munge/munge.key,
    # made with mungekey when missing), and its pid kept here so that `stop` stops only it.
    munge_ok && return 0
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
    install -d -o munge -g munge -m 0711 /var/lib/munge
    if [ ! -s /etc/munge/munge.key ]; then
        runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key ||
            die "mungekey failed to create /etc/munge/munge.key"
    fi
    runuser -u munge -- munged || { tail_log /var/log/munge/munged.log; die "munged did not start"; }
    wait_for munge munge_ok || { tail_log /var/log/munge/munged.log; die "munged does not answer within ${TIMEOUT}s"; }
    cp /run/munge/munged.pid "$DIR/munged.pid"
}

write_config() {
    local cpus mem_avail mem
    cpus=$(nproc)
    mem_avail=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
    mem=$((mem_avail * 9 / 10))
    [ "$mem" -ge 1024 ] || mem=1024
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat >"$CONF.tmp" <<EOF
# Written by scripts/slurm-cluster.sh: a one-node test cluster. Do not use in production.
ClusterName=normrobust
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job waits cred_expire seconds before it starts again (default 120)
AuthInfo=cred_expire=5
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
# slurmd gets this file from slurmctld and links it at /run/slurm/conf, where srun inside a
# job finds it (the executor plugin's job step drops SLURM_CONF from srun's environment)
SlurmctldParameters=enable_configless
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# finished jobs stay visible to squeue for an hour (there is no sacct here)
MinJobAge=3600
ReturnToService=2
# jobs are not requeued unless submitted with --requeue (as the SLURM profile does)
JobRequeue=0
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
# a second, non-default partition: tests pick it through SLURM_PARTITION
PartitionName=gpu Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
EOF
    cat >"$DIR/gres.conf.tmp" <<EOF
# two stand-in GPUs: character devices made by scripts/slurm-cluster.sh
NodeName=$NODE Name=gpu Count=2 File=/dev/fakegpu[0-1]
EOF
    mv "$CONF.tmp" "$CONF"
    mv "$DIR/gres.conf.tmp" "$DIR/gres.conf"   # served to slurmd with slurm.conf
}

start() {
    check_prereqs
    mkdir -p "$DIR"
    if pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid" && node_ready; then
        say "already running ($CONF; node $NODE $(node_state))"
        return 0
    fi
    check_no_system_conf
    make_fake_gpus
    start_munge
    if ! pid_alive "$DIR/slurmctld.pid"; then
        write_config
        rm -f "$DIR/slurmctld.pid"
        # -c: a clean start (no jobs from an earlier life of this test cluster)
        slurmctld -c -f "$CONF" || { tail_log "$DIR/log/slurmctld.log"; die "slurmctld did not start"; }
        wait_for slurmctld timeout 5 scontrol ping ||
            { tail_log "$DIR/log/slurmctld.log"; die "slurmctld does not answer on port $PORT within ${TIMEOUT}s"; }
    fi
    if ! pid_alive "$DIR/slurmd.pid"; then
        rm -f "$DIR/slurmd.pid"
        slurmd --conf-server "127.0.0.1:$PORT" || { tail_log "$DIR/log/slurmd.log"; die "slurmd did not start"; }
    fi
    if ! wait_for node node_ready; then
        # a node left down/drained by an earlier run: try to resume it once
        scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
        if ! wait_for node node_ready; then
            tail_log "$DIR/log/slurmd.log"
            tail_log "$DIR/log/slurmctld.log"
            sinfo -R >&2 || true
            die "node $NODE is '$(node_state)', not idle, after ${TIMEOUT}s"
        fi
    fi
    say "running: node $NODE $(node_state), partition $PARTITION, $(nproc) CPUs, gpu:2; export SLURM_CONF=$CONF"
}

stop_pid() {  # stop_pid <pidfile> <name>
    local pidfile=$1 name=$2 pid
    pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; say "stopped $name ($pid)"; return 0; }
        sleep 0.25
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
    say "killed $name ($pid)"
}

stop() {
    if [ -f "$CONF" ] && pid_alive "$DIR/slurmctld.pid"; then
        timeout 10 scancel --full --user "$(id -un)" >/dev/null 2>&1 || true
    fi
    stop_pid "$DIR/slurmd.pid" slurmd
    stop_pid "$DIR/slurmctld.pid" slurmctld
    stop_pid "$DIR/munged.pid" munged   # only a munged this script started
    # slurmd's link to its config cache
    if [ -L /run/slurm/conf ] && [ "$(readlink /run/slurm/conf)" = "$DIR/spool/conf-cache" ]; then
        rm -f /run/slurm/conf
    fi
}

status() {
    local rc=0
    for d in "slurmctld:$DIR/slurmctld.pid" "slurmd:$DIR/slurmd.pid" "munged:$DIR/munged.pid"; do
        if pid_alive "${d#*:}"; then say "${d%%:*} running (pid $(cat "${d#*:}"))"; else say "${d%%:*} not running"; rc=3; fi
    done
    if [ $rc = 0 ]; then
        say "node $NODE: $(node_state)"
        node_ready || rc=3
    fi
    return $rc
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start|stop|status|env   (state in \$NORMROBUST_SLURM_DIR, default /tmp/normrobust-slurm)" >&2; exit 2 ;;
esac
