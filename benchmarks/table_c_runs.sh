#!/bin/bash
# Table C cells in priority order, one at a time (the grid resumes and skips finished runs):
# nohup benchmarks/table_c_runs.sh > runner.log 2>&1 &  (then benchmarks/table_c.py --cost-log runner.log)
cd "$(dirname "$0")/.."
export MATCHOPT_DATA_ROOT=${MATCHOPT_DATA_ROOT:-../shared/design_bench_data} OMP_NUM_THREADS=1
cell() {  # method task seed
  echo "=== $(date +%T) $1 $2 seed $3"
  /usr/bin/time -f "WALL %e s PEAK %M kB" nice -n 5 .venv/bin/matchopt grid --tasks published/$1/$2 \
    --methods published/as-published --seeds $3 --root runs/published/$1 --workers 1 --threads 1 2>&1 | tail -4
}
for seed in 0 1 2 3; do
  for task in tfbind10 superconductor tfbind8; do
    for method in grad ram-listnet-no-aug; do cell $method $task $seed; done
  done
done
for seed in 0 1 2 3; do
  for task in tfbind10 superconductor tfbind8; do cell ram-rankcosine-no-aug $task $seed; done
done
echo "=== $(date +%T) done"
