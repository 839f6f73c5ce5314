#!/usr/bin/env bash
# A stability run on a real Slurm: starts munge, slurmctld and slurmd (Debian slurm-wlm) with a
# generated one-node slurm.conf in a temporary folder, submits a 4-task job array of one
# `edgefleet stability run` (each task takes its shard from SLURM_ARRAY_TASK_ID) writing to one
# folder, kills one task mid-run (scancel --signal=KILL on its array index), resubmits that
# index, merges, and checks the merged store against the same run in one process: every
# (input, environment) answer once, the same classes, probabilities within 1e-5. The tasks get
# --shard-count 4, so the array index is the shard index and the lone resubmitted index
# (--array=2, where Slurm's MIN = MAX = 2) runs shard 2 of 4 again.
# Needs root (the daemons run as root here) and takes a few minutes.
# Usage: bench/slurm_stability.sh [INPUTS]   (default 10000 fashion-mnist test images, cnn_plain, --axis jpeg-quality)
set -euo pipefail
cd "$(dirname "$0")/.."
inputs=${1:-10000}
edgefleet=$(realpath "${EDGEFLEET_BUILD_DIR:-build}/edgefleet")
for tool in slurmctld slurmd munged sbatch scancel squeue sinfo; do
  command -v "$tool" >/dev/null || { echo "needs $tool (Debian slurm-wlm and munge)" >&2; exit 1; }
done
source bench/lib.sh
tmp=$(mktemp -d /tmp/edgefleet-slurm.XXXXXX)
chmod 755 "$tmp"
daemons=()
cleanup() {
  for p in "${daemons[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -f $tmp/munge/munged.pid ]] && kill "$(cat "$tmp/munge/munged.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# munge: a fresh key and its own socket.
mkdir -p "$tmp/munge" "$tmp/state" "$tmp/spool" "$tmp/run"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 700 "$tmp/munge"
chmod 400 "$tmp/munge/munge.key"
munged --force --socket="$tmp/munge/socket" --key-file="$tmp/munge/munge.key" --log-file="$tmp/munge/log" \
  --pid-file="$tmp/munge/munged.pid" --seed-file="$tmp/munge/seed"

node=$(hostname -s)
cat >"$tmp/slurm.conf" <<CONF
ClusterName=edgefleet
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$tmp/munge/socket
CredType=cred/munge
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$tmp/slurm.conf
slurmctld -D -f "$SLURM_CONF" >"$tmp/slurmctld.out" 2>&1 &
daemons+=($!)
sleep 2
slurmd -D -f "$SLURM_CONF" >"$tmp/slurmd.out" 2>&1 &
daemons+=($!)
for _ in $(seq 100); do sinfo -h -o %t 2>/dev/null | grep -q idle && break; sleep 0.2; done
sinfo -h -o %t | grep -q idle || { cat "$tmp/slurmctld.log" "$tmp/slurmd.log" >&2; echo "slurm did not come up" >&2; exit 1; }

run_args=(stability run --model cnn_plain --data fashion-mnist:test --limit "$inputs" --axis jpeg-quality --threads 1 --batch 16
  --shard-count 4)
job=$(sbatch --parsable --array=0-3 --cpus-per-task=1 --output="$tmp/task-%a.out" \
  --wrap "$edgefleet ${run_args[*]} --out $tmp/run")
echo "submitted array job $job (4 tasks, $(nproc) CPUs: two run at once)"

# Kill task 2 once its store has some answers but is not done.
victim=2
started=$(date +%s)
killed=no
while (( $(date +%s) - started < 600 )); do
  store=$tmp/run/results-$victim-of-4.sqlite
  if [[ -f $store ]]; then
    rows=$(/usr/bin/python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from results').fetchone()[0])" "$store" 2>/dev/null || echo 0)
    if (( rows > 200 )); then
      scancel --signal=KILL "${job}_$victim"
      killed="yes, with $rows answers recorded"
      break
    fi
  fi
  sleep 0.2
done
echo "task $victim killed mid-run: $killed"
for _ in $(seq 3000); do [[ -z $(squeue -h -j "$job" 2>/dev/null) ]] && break; sleep 0.2; done

# Merge while task 2 is incomplete: it says so (exit 75).
set +e
"$edgefleet" stability merge --out "$tmp/run" >"$tmp/merge1.out" 2>&1
first_merge=$?
set -e
echo "merge before the resubmission: exit $first_merge; $(grep -h 'merged' "$tmp/merge1.out" || cat "$tmp/merge1.out")"

again=$(sbatch --parsable --array=$victim --cpus-per-task=1 --output="$tmp/task-again-%a.out" \
  --wrap "$edgefleet ${run_args[*]} --out $tmp/run")
for _ in $(seq 3000); do [[ -z $(squeue -h -j "$again" 2>/dev/null) ]] && break; sleep 0.2; done
echo "resubmitted task $victim as job $again: $(grep -h 'answers computed' "$tmp/task-again-$victim.out" || cat "$tmp/task-again-$victim.out")"
"$edgefleet" stability merge --out "$tmp/run" >"$tmp/merge2.out" 2>&1
echo "merge after it: $(grep -h 'merged' "$tmp/merge2.out")"

# The same run in one process.
"$edgefleet" "${run_args[@]}" --shard 0/1 --out "$tmp/single" >/dev/null
/usr/bin/python3 - "$tmp/run/results.sqlite" "$tmp/single/results.sqlite" <<'PY'
import json, sqlite3, sys
def rows(path):
    db = sqlite3.connect(path)
    return {(i, e): (c, json.loads(p), err) for i, e, c, p, err in
            db.execute("select input, environment, classes, probabilities, error from results")}
merged, single = rows(sys.argv[1]), rows(sys.argv[2])
print(f"merged store: {len(merged)} answers; single-process run: {len(single)}")
assert merged.keys() == single.keys(), "the (input, environment) answers differ"
worst = 0.0
for key, (classes, probabilities, error) in merged.items():
    c2, p2, e2 = single[key]
    assert classes == c2 and error == e2, f"{key}: {classes} {error!r} vs {c2} {e2!r}"
    worst = max([worst] + [abs(a - b) for a, b in zip(probabilities, p2)])
assert worst < 1e-5, f"probabilities differ by {worst}"
print(f"every answer equal: classes exactly, probabilities within {worst:.1e}")
PY
