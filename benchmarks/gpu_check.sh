#!/usr/bin/env bash
# The GPU check of timm-compound's training paths, under 5 minutes on one GPU (more GPUs: the DDP part
# uses all of them). On a machine without a CUDA GPU it says so and exits 0.
#   bash benchmarks/gpu_check.sh            (from the repository root, with the project's venv)
# 1. benchmarks/gpu_check.py: resnet18_cs_phi1 and efficientnet_b0_cs_phi1, 200 steps each on synthetic
#    batches with bf16 autocast, channels-last and torch.compile, through the training engine and through
#    a plain PyTorch loop: the loss falls, the outputs are finite, images per second side by side.
# 2. `timm-compound train` under torchrun on every GPU (bf16, channels-last, compile), 2 epochs of
#    builtin:digits: DDP with nccl, the run written once.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

gpus=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
if [ "$gpus" = 0 ]; then
    echo "gpu_check: no CUDA GPU visible to torch on this machine; nothing to check (exit 0)"
    exit 0
fi
"$PY" -c "import torch; print('gpu_check:', torch.cuda.device_count(), 'x', torch.cuda.get_device_name(0), '| torch', torch.__version__)"

echo "== 1. engine against a plain loop, one GPU"
"$PY" benchmarks/gpu_check.py --device cuda --steps "${STEPS:-200}" --batch-size "${BATCH:-64}"

echo "== 2. torchrun on $gpus GPU(s): timm-compound train, bf16 + channels-last + compile"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$PY" -m torch.distributed.run --standalone --nproc_per_node "$gpus" -m timm_compound train resnet18_cs_phi1 \
    --resolution 64 --epochs 2 --batch-size 32 --amp bf16 --channels-last --compile default --out "$out/ddp"
"$PY" - "$out/ddp" "$gpus" <<'EOF'
import csv, json, math, sys
record = json.load(open(f"{sys.argv[1]}/run.json"))
rows = list(csv.DictReader(open(f"{sys.argv[1]}/metrics.csv")))
assert record["status"] == "completed" and record["world_size"] == int(sys.argv[2]), record["status"]
assert [r["epoch"] for r in rows] == ["1", "2"] and all(math.isfinite(float(r["train_loss"])) for r in rows)
assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"]), "the DDP run's loss did not fall"
print(f"gpu_check: DDP on {sys.argv[2]} GPU(s) OK: train loss {rows[0]['train_loss'][:6]} -> {rows[1]['train_loss'][:6]}, "
      f"{float(rows[1]['images_per_second']):.0f} img/s in epoch 2")
EOF
echo "gpu_check: OK"
