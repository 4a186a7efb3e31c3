#!/usr/bin/env bash
# The GPU figures of the README, in one run: the zoo's Trainer beside a plain PyTorch loop of the
# same model (benchmarks/train_throughput.py), bf16 autocast, fused AdamW, torch.compile where
# it helps: gpt2-small (batch 16 x 1024 tokens), lstm-large and resnet50. It writes
# figures.txt (the printed lines) and one JSON file per model into the output folder, and takes
# about 5 minutes on an H100 (most of it compiling).
#
#   benchmarks/gpu_figures.sh [--out DIR]                  # on the GPU (default: ./gpu-figures)
#   benchmarks/gpu_figures.sh --device cpu --tiny          # the same path, tiny, on a CPU
#
# Goals on an H100/H200-class GPU: gpt2-small at MFU >= 40% and a zoo/plain ratio >= 0.95.
set -euo pipefail

device=cuda
tiny=()
out=gpu-figures
while [[ $# -gt 0 ]]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --tiny) tiny=(--tiny --peak-tflops 1); shift ;;
        --out) out="$2"; shift 2 ;;
        *) echo "unknown argument: $1 (use --device cuda|cpu, --tiny, --out DIR)" >&2; exit 2 ;;
    esac
done
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python}"
mkdir -p "$out"
report="$out/figures.txt"
: > "$report"

bench() {  # a label, then the arguments of train_throughput.py
    local label="$1"
    shift
    echo "== $label" | tee -a "$report"
    "$python" "$here/train_throughput.py" --device "$device" --repeats 1 "${tiny[@]}" \
        --json-out "$out/$label.json" "$@" 2>&1 | grep -v '^{' | tee -a "$report"
}

{
    echo "zoo GPU figures, $(date -u +%Y-%m-%dT%H:%MZ)"
    "$python" -c "import torch; print('torch', torch.__version__, '| device:', \
torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU')"
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
        --format=csv,noheader || true
} | tee -a "$report"

if [[ ${#tiny[@]} -gt 0 ]]; then
    # The path of each step below, at sizes a CPU runs in seconds.
    bench gpt2-small --models transformer --steps 20 --warmup-steps 10 --batch-size 8
    bench lstm-large --models lstm --steps 20 --warmup-steps 10 --batch-size 8
    bench resnet50 --models resnet --steps 20 --warmup-steps 10 --batch-size 8
else
    # 16 x 1024 tokens a step; the character vocabulary of the embedded text, not GPT-2's BPE.
    bench gpt2-small --models gpt2-small --compile --batch-size 16 --set seq_len=1024 \
        --steps 80 --warmup-steps 30
    bench lstm-large --models lstm-large --batch-size 64 --steps 60 --warmup-steps 20
    bench resnet50 --models resnet50 --compile --batch-size 128 --set num_images=2048 \
        --steps 80 --warmup-steps 30
fi
echo "figures in $report"
