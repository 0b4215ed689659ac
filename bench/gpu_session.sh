#!/usr/bin/env bash
# One lent-GPU session (16 cores + one H200): the baseline comparison on the CPU cores
# (`python -m laser_train compare`, 15 single-threaded workers, device cpu) while the GPU checks that changed
# since the last session run on the GPU. OUT_DIR gets compare.log, compare.tgz (the run directory without
# checkpoints: docs/gen_baselines.py reads it), test_cuda.txt, eval_cuda.jsonl, train_cuda.jsonl.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT_DIR=${1:?usage: bash bench/gpu_session.sh OUT_DIR}
mkdir -p "$OUT_DIR"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [ -d .whl ] && ! python3 -c "import lark" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
( timeout "${COMPARE_S:-440}" python3 -m laser_train compare --run.out=/tmp/cmp/compare --run.workers=15 \
    --train.device=cpu --train.progress=false > "$OUT_DIR/compare.log" 2>&1
  tar czf "$OUT_DIR/compare.tgz" --exclude='*.pt' -C /tmp/cmp compare ) &
timeout 90 python3 -m pytest tests/test_cuda.py -q -p no:cacheprovider -k "clip or large_batch" \
  > "$OUT_DIR/test_cuda.txt" 2>&1
timeout 150 python3 bench/eval_throughput.py --device cuda --engines v2 --threads 0 --min-time 0.5 \
  --workloads laser,gpu_B --json-out "$OUT_DIR/eval_cuda.jsonl" > "$OUT_DIR/eval.log" 2>&1
timeout 100 python3 bench/train_throughput.py --devices cuda --models small,clip-b32 --ddp 0 --precision bf16 \
  --batch-size 16 --threads 1 --out "$OUT_DIR/train_cuda.jsonl" > "$OUT_DIR/train.log" 2>&1
wait
tail -n 3 "$OUT_DIR"/*.txt "$OUT_DIR"/*.log
