#!/bin/bash
# Starts a one-node SLURM cluster on this Debian machine (as root), so that
#   .venv/bin/pytest -m slow tests/test_sweep.py -k real_slurm
# submits a tiny sweep through real sbatch/squeue instead of skipping. Takes about a minute
# (most of it apt-get). Jobs run as root on this host. To stop it:
#   kill "$(cat /run/slurmctld.pid)" "$(cat /run/slurmd.pid)"
set -euo pipefail
[[ $(id -u) == 0 ]] || { echo "run as root: it installs packages and starts daemons" >&2; exit 1; }
if ! command -v slurmctld > /dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge > /dev/null
fi
host=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
chown munge:munge /run/munge
cat > /etc/slurm/slurm.conf <<EOF
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# no cgroups or systemd needed: containers and VMs without them work
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
pgrep -x munged > /dev/null || /usr/sbin/munged --force
pgrep -x slurmctld > /dev/null || /usr/sbin/slurmctld
pgrep -x slurmd > /dev/null || /usr/sbin/slurmd
for _ in $(seq 30); do
  if sinfo --noheader --format=%t 2>/dev/null | grep -qE 'idle|mix'; then
    sinfo
    exit 0
  fi
  sleep 1
done
echo "the node did not come up; see /var/log/slurm/" >&2
exit 1
