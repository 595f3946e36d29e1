#!/bin/sh
# tests/slurm/stop.sh DIR: stops the cluster tests/slurm/start.sh DIR started (its slurmd, slurmctld and munged, by the
# pid files in DIR) and waits for them to exit.
dir=${1:?usage: tests/slurm/stop.sh DIR}
for f in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  i=0
  while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
done
exit 0
