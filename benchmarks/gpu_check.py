"""The GPU paths of `timm_compound.train`, checked on one machine in a few minutes (run by gpu_check.sh).

For resnet18_cs_phi1 and efficientnet_b0_cs_phi1 at their own resolution, on synthetic batches that
live on the device (so the data loader is not measured): 200 optimizer steps through the training
engine (timm's optimizer, bf16 autocast, channels-last, torch.compile) and 200 steps of a plain
PyTorch loop with the same model, batch and features, side by side. Checks that the engine's loss
falls and every output is finite, and prints images per second for each. Runs on the CPU too
(`--device cpu --steps 3 --no-compile --resolution 32 --amp none`) so the script itself is tested where there is no GPU.

    python benchmarks/gpu_check.py [--device cuda] [--steps 200] [--batch-size 64] [--no-compile] [--resolution PX]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time

import torch
import torch.nn as nn

MODELS = ("resnet18_cs_phi1", "efficientnet_b0_cs_phi1")


def synthetic(batch: int, pixels: int, classes: int, device: torch.device, count: int = 4):
    """A few fixed batches on the device; labels are a function of the image so there is something to learn."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        images = torch.randn(batch, 3, pixels, pixels, generator=generator)
        labels = (images[:, 0].mean((1, 2)) > 0).long() + 2 * (images[:, 1].mean((1, 2)) > 0).long()
        batches.append((images.to(device), labels.to(device), torch.arange(batch)))
    return batches


class Repeat:
    """The engine's loader interface over `steps` batches cycled from a few fixed ones."""

    def __init__(self, batches, steps: int):
        self.batches, self.steps = batches, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        return (self.batches[i % len(self.batches)] for i in range(self.steps))


def engine_run(
    name: str,
    device: torch.device,
    steps: int,
    batch: int,
    compile_model: bool,
    resolution: int | None = None,
    amp: str = "auto",
    backend: str = "inductor",
) -> dict:
    import timm

    import timm_compound  # noqa: F401  (registers the variants)
    from timm_compound.train.config import TrainConfig
    from timm_compound.train.distributed import World
    from timm_compound.train.engine import train_epoch
    from timm_compound.train.progress import Reporter
    from timm_compound.train.setup import make_parts

    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=4)
    pixels = resolution or model.pretrained_cfg["input_size"][-1]
    if amp == "auto":
        amp = "bf16" if device.type == "cpu" or torch.cuda.is_bf16_supported() else "fp16"
    amp = None if amp == "none" else amp
    settings = TrainConfig(
        model=name,
        batch_size=batch,
        lr=0.05,
        sched="none",
        amp=amp,
        channels_last=True,
        compile="default" if compile_model else None,
        compile_backend=backend,
        weight_decay=0.0,
    )
    parts = make_parts(model, settings, device=device, updates_per_epoch=steps, num_classes=4, ddp=False)
    batches = synthetic(batch, pixels, 4, device)
    losses = []

    class Record(Reporter):
        def step(self, done, loss=None, top1=None, rate=None):
            if loss is not None:
                losses.append(loss)

    warm = Repeat(batches, 3)  # compile and autotune outside the timed steps
    train_epoch(
        parts,
        warm,
        epoch=1,
        updates=0,
        visits=torch.zeros(batch, dtype=torch.int64),
        world=World(device=device),
        reporter=Reporter("quiet"),
    )
    _sync(device)
    start = time.perf_counter()
    sums, _ = train_epoch(
        parts,
        Repeat(batches, steps),
        epoch=1,
        updates=3,
        visits=torch.zeros(batch, dtype=torch.int64),
        world=World(device=device),
        reporter=Record("quiet"),
        every=max(1, steps // 10),
    )
    _sync(device)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        outputs = parts.model(batches[0][0].contiguous(memory_format=torch.channels_last))
    return {
        "name": name,
        "pixels": pixels,
        "amp": amp or "none",
        "img_s": steps * batch / seconds,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "finite": bool(torch.isfinite(outputs).all()) and math.isfinite(sums.loss),
    }


def plain_run(
    name: str,
    device: torch.device,
    steps: int,
    batch: int,
    compile_model: bool,
    amp: str,
    pixels: int,
    backend: str = "inductor",
) -> float:
    """The same model, batch and features in the shortest loop PyTorch allows: images per second."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=4).to(device).to(memory_format=torch.channels_last).train()
    forward = torch.compile(model, backend=backend) if compile_model else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    loss_fn = nn.CrossEntropyLoss()
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
        if amp in ("bf16", "fp16")
        else contextlib.nullcontext()
    )
    batches = synthetic(batch, pixels, 4, device)

    def step(images, labels):
        with autocast:
            loss = loss_fn(forward(images.contiguous(memory_format=torch.channels_last)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(3):
        step(*batches[i % len(batches)][:2])
    _sync(device)
    start = time.perf_counter()
    for i in range(steps):
        step(*batches[i % len(batches)][:2])
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--resolution", type=int, default=None, help="input pixels (default: each model's own)")
    parser.add_argument("--compile-backend", default="inductor", help="eager: the compile plumbing without codegen")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument(
        "--amp",
        choices=("auto", "bf16", "fp16", "none"),
        default="auto",
        help="auto: bf16 where the GPU has it, else fp16",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    compile_model = not args.no_compile
    print(
        f"device {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}, "
        f"{args.steps} steps of batch {args.batch_size}, channels-last, compile {'on' if compile_model else 'off'}"
    )
    print(
        f"{'model':<26}{'px':>5}{'amp':>6}{'engine img/s':>14}{'plain img/s':>13}{'ratio':>7}{'loss first':>12}"
        f"{'loss last':>11}  finite"
    )
    ok = True
    for name in args.models.split(","):
        engine = engine_run(
            name, device, args.steps, args.batch_size, compile_model, args.resolution, args.amp, args.compile_backend
        )
        plain = plain_run(
            name,
            device,
            args.steps,
            args.batch_size,
            compile_model,
            engine["amp"],
            engine["pixels"],
            args.compile_backend,
        )
        falls = engine["last_loss"] < engine["first_loss"]
        ok &= falls and engine["finite"]
        print(
            f"{name:<26}{engine['pixels']:>5}{engine['amp']:>6}{engine['img_s']:>14.1f}{plain:>13.1f}"
            f"{engine['img_s'] / plain:>7.3f}{engine['first_loss']:>12.4f}{engine['last_loss']:>11.4f}  "
            f"{engine['finite']}{'' if falls else '  (loss did not fall)'}"
        )
    print("OK" if ok else "FAILED: a loss did not fall or an output was not finite")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
