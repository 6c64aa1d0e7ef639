#!/usr/bin/env bash
# The GPU checks and the save bench in one call of a lent GPU machine (issue 13's GPU rows), each step
# bounded so that what finished comes back in $OUT even when the lease runs short.
#
# Here, once per session (the machine has torch, fsspec, wrapt, lightning, numpy, tqdm, tabulate but
# no SQLAlchemy, Alembic, Mako or blake3; it cannot download):
#     bash bench/gpu_session.sh --wheels        # into .whl/ (git-ignored), the versions of constraints.txt
# Then, through the device tool, with carry [".whl"] and a timeout_s of about 560:
#     bash bench/gpu_session.sh
# Here, without a GPU, to try the script itself (the bench on the CPU, small sizes, no wheels):
#     OUT=/tmp/gpu-out PYTHON=.venv/bin/python SIZES=10 bash bench/gpu_session.sh --cpu
#
# Sizes: SIZES (default 10,1024 with 3 runs each), then 4096 once if time is left. Results:
# $OUT/gpu_check.log, $OUT/bench.md (the tables, for bench/results-gpu.md), $OUT/bench.log,
# $OUT/python_after_save.log, and, if time is left, $OUT/copy_hash_overlap.log.
# AB_TREE=<folder holding another autolog/> (carried too): instead of the 4096 run, bench/ab_trees.py
# at 1024 MB, 3 runs, this tree against that one ($OUT/ab.log), e.g. an experiment of bench/experiments/:
#     git worktree add /tmp/take HEAD && git -C /tmp/take apply "$PWD/bench/experiments/take-set-aside.patch"
#     mkdir -p .ab && cp -r /tmp/take/autolog .ab/ && echo /.ab/ >> .git/info/exclude
#     (carry [".whl", ".ab"], command: AB_TREE=.ab bash bench/gpu_session.sh)
set -u -o pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WHEELS=(sqlalchemy alembic mako blake3)

if [ "${1:-}" = "--wheels" ]; then
    mkdir -p .whl
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    for name in "${WHEELS[@]}"; do
        pin=$(grep -i "^${name}==" constraints.txt) || { echo "no pin for $name in constraints.txt"; exit 1; }
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d .whl "$pin" || exit 1
    done
    ls -l .whl
    exit 0
fi

OUT=${OUT:?the device tool sets OUT; set it to a folder to try the script here}
DEVICE=cuda
CHECK_ARGS=()
if [ "${1:-}" = "--cpu" ]; then
    DEVICE=cpu
    CHECK_ARGS=(--cpu)
elif [ -d .whl ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 AUTOLOG_HOME=/tmp/autolog-gpu-home
start=$SECONDS

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/machine.txt" 2>&1
nproc >> "$OUT/machine.txt"
timeout 150 "$PYTHON" bench/gpu_check.py "${CHECK_ARGS[@]}" 2>&1 | tee "$OUT/gpu_check.log"
echo "gpu_check: exit ${PIPESTATUS[0]}, $((SECONDS - start)) s" | tee -a "$OUT/gpu_check.log"

timeout 300 "$PYTHON" bench/run_bench.py --only-saves --device "$DEVICE" --sizes "${SIZES:-10,1024}" --repeat 3 \
    --out "$OUT/bench.md" 2>&1 | tee "$OUT/bench.log"
echo "bench: exit ${PIPESTATUS[0]}, $((SECONDS - start)) s" | tee -a "$OUT/bench.log"

# Whether Python after a 10 MB save runs as much slower there as on the 2-core VM (bench/results.md).
timeout 45 "$PYTHON" bench/experiments/python_after_save.py 2>&1 | tee "$OUT/python_after_save.log"

left=$((520 - (SECONDS - start)))
if [ -n "${AB_TREE:-}" ] && [ "$left" -gt 60 ]; then
    timeout "$left" "$PYTHON" bench/ab_trees.py --megabytes "${AB_MEGABYTES:-1024}" --repeat 3 \
        main="$PWD" other="$AB_TREE" 2>&1 | tee "$OUT/ab.log"
    echo "ab_trees: exit ${PIPESTATUS[0]}, $((SECONDS - start)) s" | tee -a "$OUT/ab.log"
elif [ "$DEVICE" = cuda ] && [ "$left" -gt 150 ]; then
    timeout "$left" "$PYTHON" bench/run_bench.py --only-saves --device cuda --sizes 4096 --repeat 1 \
        --out "$OUT/bench-4096.md" 2>&1 | tee -a "$OUT/bench.log"
    echo "bench 4096: exit ${PIPESTATUS[0]}, $((SECONDS - start)) s" | tee -a "$OUT/bench.log"
fi

# Last, if time is left: what hashing beside the copy would save there (ARCHITECTURE, "Hashing on its own thread").
left=$((520 - (SECONDS - start)))
if [ "$left" -gt 60 ]; then
    timeout $((left - 10)) "$PYTHON" bench/experiments/copy_hash_overlap.py --megabytes 1024 --repeat 3 2>&1 \
        | tee "$OUT/copy_hash_overlap.log"
fi
