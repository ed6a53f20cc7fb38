#!/usr/bin/env bash
# The GPU check: one call, at most about 8 minutes, on a machine lent with a GPU.
#
#   benchmarks/gpu_check.sh [--dry-run] [--out DIR] [--steps N]
#
# Runs the project from this source tree with the machine's own python3 (no virtual environment,
# no install: PYTHONPATH=<repo root>; PYTHON=... picks another interpreter) and writes everything
# under one folder (--out, else $OUT if set, else ./gpu_check_out):
#
#   packages.json/.log   every package the project needs: version found, or MISSING (named)
#   env.json/.log        GPU(s), driver, torch, its CUDA, cuDNN, NCCL, the CPU
#   throughput.json/.txt paper size (128x128, batch 120): Base and POSE img/s and peak memory,
#                        float32 and amp (bfloat16 autocast), --steps steps each (default 300)
#   distributed.json/.log  2-process torchrun smoke (NCCL) of Base, when 2 or more GPUs are present
#   methods.json/.log    a smoke-profile run of every registered method on CUDA, and again with
#                        amp=true for those that support it; run folders under runs/ and runs_amp/
#   steps.tsv, summary.txt  each step's status and time; the figures above in one page
#
# --dry-run: the same steps on the CPU with tiny sizes (throughput at the smoke size for 2 steps,
# the torchrun step with 2 gloo processes); the test suite runs it
# (tests/benchmarks/test_gpu_check.py).
# Exit status: 0 all steps passed (or were skipped), 1 a step failed, 2 the check could not start.

set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY=0
DEST="${OUT:-./gpu_check_out}"
STEPS=300
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --out) DEST="${2:?--out needs a folder}"; shift ;;
        --steps) STEPS="${2:?--steps needs a number}"; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
PY="${PYTHON:-python3}"
mkdir -p "$DEST" || { echo "error: cannot create $DEST" >&2; exit 2; }
DEST="$(cd "$DEST" && pwd)"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
cd "$REPO"
: > "$DEST/steps.tsv"
FAILED=0

# step NAME TIMEOUT_S COMMAND...: run with a time limit, log to NAME.log, record the status.
step() {
    local name="$1" limit="$2"; shift 2
    local start end rc status
    echo "== $name"
    start=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" > "$DEST/$name.log" 2>&1
    rc=$?
    end=$(date +%s)
    case $rc in
        0) status=ok ;;
        124|137) status=timeout; FAILED=1 ;;
        *) status=failed; FAILED=1 ;;
    esac
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$((end - start))" "exit $rc" >> "$DEST/steps.tsv"
    tail -n 40 "$DEST/$name.log"
    return $rc
}

skip() {
    echo "== $1: skipped ($2)"
    printf '%s\t%s\t%s\t%s\n' "$1" "skipped" "0" "$2" >> "$DEST/steps.tsv"
}

if ! command -v "$PY" > /dev/null; then
    echo "error: no $PY on this machine (set PYTHON=/path/to/python3)" >&2
    exit 2
fi
# Time limits (s) of packages, env, throughput, data, distributed, methods: on a GPU they add up to
# 8 minutes at most; the dry run's are wider because it runs on shared CPUs.
if [ "$DRY" = 1 ]; then
    DEVICE=cpu
    export OMP_NUM_THREADS=1
    BENCH=(--device cpu --sizes smoke --steps 2 --warmup 1 --threads 1)
    LIMITS=(120 120 240 120 240 480)
else
    DEVICE=cuda
    BENCH=(--device cuda --sizes paper --steps "$STEPS" --warmup 20)
    LIMITS=(45 45 180 30 60 120)
fi

step packages "${LIMITS[0]}" "$PY" benchmarks/gpu_check.py packages "$DEST"
if [ $? -eq 2 ]; then
    echo "error: python too old or torch missing; see $DEST/packages.log" >&2
    "$PY" benchmarks/gpu_check.py summary "$DEST" > /dev/null 2>&1
    exit 2
fi
step env "${LIMITS[1]}" "$PY" benchmarks/gpu_check.py env "$DEST"
# What env found, read back without importing torch again.
fact() { "$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$DEST/env.json" "$1" 2>/dev/null; }
if [ "$DRY" = 0 ] && [ "$(fact cuda_available)" != True ]; then
    echo "error: CUDA is not available to torch here (see $DEST/env.log); use --dry-run on a CPU" >&2
    "$PY" benchmarks/gpu_check.py summary "$DEST" > /dev/null 2>&1
    exit 2
fi

step throughput "${LIMITS[2]}" "$PY" benchmarks/bench_train.py "${BENCH[@]}" --json "$DEST/throughput.json"
cp "$DEST/throughput.log" "$DEST/throughput.txt"

step data "${LIMITS[3]}" "$PY" benchmarks/gpu_check.py data "$DEST"

GPUS=$(fact gpu_count); GPUS=${GPUS:-0}
if [ "$DRY" = 1 ]; then
    step distributed "${LIMITS[4]}" "$PY" benchmarks/gpu_check.py distributed "$DEST" cpu
elif [ "$GPUS" -ge 2 ]; then
    step distributed "${LIMITS[4]}" "$PY" benchmarks/gpu_check.py distributed "$DEST" cuda
else
    skip distributed "$GPUS GPU(s) present; the NCCL smoke needs 2"
    LIMITS[5]=$((LIMITS[5] + LIMITS[4]))  # its time goes to the method runs
fi

step methods "${LIMITS[5]}" "$PY" benchmarks/gpu_check.py methods "$DEST" "$DEVICE"

"$PY" benchmarks/gpu_check.py summary "$DEST" > /dev/null 2>&1
echo "== summary ($DEST/summary.txt)"
cat "$DEST/summary.txt" 2>/dev/null
exit $FAILED
