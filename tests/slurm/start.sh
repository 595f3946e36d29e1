#!/bin/sh
# tests/slurm/start.sh DIR: starts a private single-node SLURM cluster (Debian's munge, slurmctld and slurmd) whose
# configuration, state, logs and munge socket all live in DIR, for tests/lua/test_sweep_slurm.lua. Run as root (CI
# runs as root). Prints the SLURM_CONF to export for sbatch/squeue/scancel and exits 0 when the node is idle and takes
# jobs; exits 77 (ctest's "skipped") with one line saying why when it cannot: not root, a package missing (install
# with .ci/install-deps.sh), or a daemon that does not start here (a container without the needed privileges).
# tests/slurm/stop.sh DIR stops what this started. Nothing outside DIR is written (the machine's own munge and SLURM,
# if any, are left alone: the cluster uses its own ports, socket, key and spool).
set -u
dir=${1:?usage: tests/slurm/start.sh DIR}
skip() { echo "slurm: $*" >&2; exit 77; }
[ "$(id -u)" = 0 ] || skip "not root (slurmd must run as root)"
for b in munged mungekey slurmctld slurmd sbatch squeue sinfo scontrol; do
  command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || skip "$b is not installed (apt-get install munge slurmctld slurmd slurm-client)"
done
PATH=$PATH:/usr/sbin
mkdir -p "$dir" || skip "cannot create $dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 700 "$dir/munge"

# munge: a private key and daemon (munged refuses to run as root without --force)
[ -f "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null 2>&1 ||
  skip "mungekey could not create a key"
chmod 600 "$dir/munge/munge.key"
munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munge.seed" \
  >/dev/null 2>&1 || skip "munged does not start: $(tail -n 1 "$dir/munge/munged.log" 2>/dev/null)"

host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 / 2}' /proc/meminfo)
# ports from the folder's name, so that two clusters on one machine (two test runs) do not collide
base=$(( 20000 + $(printf '%s' "$dir" | cksum | cut -d' ' -f1) % 20000 ))
cat > "$dir/slurm.conf" <<CONF
ClusterName=dpltest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$base
SlurmdPort=$((base + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmctldParameters=enable_configless
KillWait=5
MinJobAge=600
InactiveLimit=0
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF" -i >/dev/null 2>&1 || skip "slurmctld does not start: $(tail -n 1 "$dir/slurmctld.log" 2>/dev/null)"
slurmd -f "$SLURM_CONF" >/dev/null 2>&1 || skip "slurmd does not start: $(tail -n 1 "$dir/slurmd.log" 2>/dev/null)"
# wait (at most 60 s) for the node to be idle: that is when it takes jobs
i=0
while [ $i -lt 120 ]; do
  state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1)
  case "$state" in idle*) echo "export SLURM_CONF=$SLURM_CONF"; exit 0 ;; esac
  sleep 0.5
  i=$((i + 1))
done
skip "the node did not become idle (state '$state'): $(tail -n 2 "$dir/slurmd.log" 2>/dev/null | tr '\n' ' ')"
