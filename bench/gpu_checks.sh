#!/usr/bin/env bash
# Every GPU check and benchmark in one short script, for a lent CUDA machine (about 6 minutes on one H200).
#
#   bash bench/gpu_checks.sh [OUT_DIR]      # default OUT_DIR: bench/results/gpu
#
# 1. tests/test_cuda.py: the torch backend on CUDA against the reference interpreter and against the CPU
#    (values, witnesses, gradients), B = 4,096 in one call, the small model on CUDA (fp32 = CPU, bf16 autocast),
#    weak training on CUDA in fp32 / bf16 / fp16 (fp32's first loss equals the CPU run's), a CLIP step in bf16;
# 2. bench/eval_throughput.py on CUDA: laser (B = 64), sweep_N, prune_N (certified pruning) and gpu_B (B = 1,024 … 16,384);
# 3. bench/train_throughput.py on CUDA: the small model and a ViT-B/32-sized random CLIP, bf16.
#
# Results land in OUT_DIR (gpu.txt, test_cuda.txt, eval_cuda.jsonl, train_cuda.jsonl);
# docs/gen_performance.py renders eval_cuda.jsonl into docs/performance.md. Needs python3 with torch
# (CUDA), numpy, pytest, hypothesis, transformers; a wheel of lark in .whl/ is installed when present
# (a machine without a package index).
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT_DIR=${1:-bench/results/gpu}
mkdir -p "$OUT_DIR"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [ -d .whl ] && ! python3 -c "import lark" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
status=0
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c "import sys, torch, transformers; print('python', sys.version.split()[0], 'torch', torch.__version__,
'transformers', transformers.__version__, torch.cuda.get_device_name(), 'cpus', __import__('os').cpu_count())"
} 2>&1 | tee "$OUT_DIR/gpu.txt"
echo "== tests/test_cuda.py"
timeout 240 python3 -m pytest tests/test_cuda.py -q -p no:cacheprovider -x 2>&1 | tee "$OUT_DIR/test_cuda.txt" \
  || status=1
echo "== bench/eval_throughput.py --device cuda"
rm -f "$OUT_DIR/eval_cuda.jsonl"
timeout 200 python3 bench/eval_throughput.py --device cuda --engines v2 --threads 0 --min-time 0.5 \
  --workloads laser,sweep_N,prune_N,gpu_B --json-out "$OUT_DIR/eval_cuda.jsonl" || status=1
echo "== bench/train_throughput.py --devices cuda"
timeout 150 python3 bench/train_throughput.py --devices cuda --models small,clip-b32 --ddp 0 --precision bf16 \
  --batch-size 16 --threads 4 --out "$OUT_DIR/train_cuda.jsonl" || status=1
exit $status
