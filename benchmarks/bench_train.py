"""By hand: `python benchmarks/bench_train.py [rounds] [epochs] [threads] [--features] [--bf16]`.
timm_compound.train against a minimal loop.

Both train resnet18_cs_phi0 at 32 px on builtin:digits (1,438 training images) with batch 64 and
SGD (nesterov momentum 0.9, weight decay 2e-5, as timm's "sgd"), from the same data pipeline
(timm's transforms). The hand-written loop is forward, cross-entropy, backward, step, nothing else.
Images/s counts the training loop only (data loading included, evaluation excluded) for both.
`--features` compares again with EMA, Mixup, RandAugment and channels-last on in both (the hand loop
then calls timm's Mixup, SoftTargetCrossEntropy and ModelEmaV3 itself); `--bf16` times `train` with
bf16 autocast against fp32, epoch by epoch side by side (two runs alternating epochs).

Side by side in one process, epoch by epoch: after each epoch of `train`, its `on_epoch` hook runs
one epoch of the hand-written loop, so both see the same machine load. The first epoch of each is
a warm-up and left out; the ratio train / hand-written is printed per round and as the median.
`threads` sets torch's CPU threads (1 gives steadier numbers on a machine shared with other work).
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import timm_compound  # noqa: F401 - registers resnet18_cs_phi0
from timm_compound.hub.load import build
from timm_compound.train.api import train
from timm_compound.train.data import load_data
from timm_compound.train.loaders import Samples, make_transforms
from timm_compound.train.models import registered_plan, with_resolution

FEATURES = dict(ema=True, mixup=0.2, aa="rand-m9-mstd0.5", augment=True, channels_last=True)

MODEL, PIXELS, BATCH = "resnet18_cs_phi0", 32, 64


class HandWritten:
    """The plainest training loop over the same model, data and batch (and, with `features`, the same
    EMA, Mixup, RandAugment and channels-last, each called directly)."""

    def __init__(self, seed: int, features: bool = False):
        from timm.data import Mixup
        from timm.loss import SoftTargetCrossEntropy
        from timm.utils import ModelEmaV3

        torch.manual_seed(seed)
        self.model = build(with_resolution(registered_plan(MODEL), PIXELS), num_classes=10).train()
        self.features = features
        config = timm.data.resolve_model_data_config(self.model)
        transform, _ = make_transforms(
            config, PIXELS, PIXELS, augment=features, crop_pct=1.0, aa=FEATURES["aa"] if features else None
        )
        self.loader = DataLoader(
            Samples(load_data("builtin:digits").train, transform), batch_size=BATCH, shuffle=True, drop_last=True
        )
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=0.1 * BATCH / 256, momentum=0.9, nesterov=True, weight_decay=2e-5
        )
        if features:
            self.model.to(memory_format=torch.channels_last)
            self.mixup = Mixup(mixup_alpha=FEATURES["mixup"], label_smoothing=0.0, num_classes=10)
            self.loss = SoftTargetCrossEntropy()
            self.ema = ModelEmaV3(self.model, decay=0.9998, use_warmup=True)
        self.updates = 0

    def epoch(self) -> float:
        """One epoch; its images per second."""
        images, start = 0, time.perf_counter()
        for inputs, targets, _ in self.loader:
            if self.features:
                inputs, soft = self.mixup(inputs.contiguous(memory_format=torch.channels_last), targets)
                loss = self.loss(self.model(inputs), soft)
            else:
                loss = F.cross_entropy(self.model(inputs), targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.updates += 1
            if self.features:
                self.ema.update(self.model, step=self.updates)
            images += targets.shape[0]
        return images / (time.perf_counter() - start)


def against_hand(rounds: int, epochs: int, features: bool) -> None:
    label = "EMA + Mixup + RandAugment + channels-last" if features else "no extra features"
    print(f"train against a hand-written loop, {label}")
    print(f"{'round':>5} {'hand img/s':>11} {'train img/s':>12} {'train/hand':>11} {'train epoch s':>14} {'top-1':>7}")
    ratios = []
    for index in range(1, rounds + 1):
        hand = HandWritten(seed=index, features=features)
        hand_rates: list[float] = []
        result = train(
            MODEL,
            "builtin:digits",
            epochs=epochs,
            batch_size=BATCH,
            resolution=PIXELS,
            seed=index,
            progress=False,
            on_epoch=lambda epoch, metrics: hand_rates.append(hand.epoch()),
            **(FEATURES if features else {}),
        )
        ours = [row.images_per_second for row in result.history]
        ratio = statistics.median(a / b for a, b in zip(ours[1:], hand_rates[1:]))
        ratios.append(ratio)
        seconds = statistics.median(row.seconds for row in result.history[1:])
        print(
            f"{index:>5} {statistics.median(hand_rates[1:]):11.1f} {statistics.median(ours[1:]):12.1f} "
            f"{ratio:11.3f} {seconds:14.2f} {result.top1:6.1f}%",
            flush=True,
        )
    ratio = statistics.median(ratios)
    print(f"median train/hand-written throughput: {ratio:.3f} (overhead {100 * (1 - ratio):+.1f}%)")


def bf16_against_fp32(rounds: int, epochs: int) -> None:
    """`train` with amp='bf16' and without, alternating epochs (each run's on_epoch trains one epoch of the other)."""
    import threading

    print("train with bf16 autocast against fp32 (alternating epochs)")
    print(f"{'round':>5} {'fp32 img/s':>11} {'bf16 img/s':>11} {'bf16/fp32':>10} {'fp32 top-1':>11} {'bf16 top-1':>11}")
    ratios = []
    for index in range(1, rounds + 1):
        turns = [threading.Event(), threading.Event()]
        results = {}

        def run(amp, mine, other):
            def hand_over(epoch, metrics):
                other.set()
                mine.wait()
                mine.clear()

            mine.wait()
            mine.clear()
            results[amp] = train(
                MODEL,
                "builtin:digits",
                epochs=epochs,
                batch_size=BATCH,
                resolution=PIXELS,
                seed=index,
                progress=False,
                amp=amp,
                on_epoch=hand_over,
            )
            other.set()

        threads = [
            threading.Thread(target=run, args=(None, turns[0], turns[1])),
            threading.Thread(target=run, args=("bf16", turns[1], turns[0])),
        ]
        for thread in threads:
            thread.start()
        turns[0].set()
        for thread in threads:
            thread.join()
        fp32 = statistics.median(row.images_per_second for row in results[None].history[1:])
        bf16 = statistics.median(row.images_per_second for row in results["bf16"].history[1:])
        ratios.append(bf16 / fp32)
        print(
            f"{index:>5} {fp32:11.1f} {bf16:11.1f} {bf16 / fp32:10.3f} {results[None].top1:10.1f}% "
            f"{results['bf16'].top1:10.1f}%",
            flush=True,
        )
    print(f"median bf16/fp32 throughput: {statistics.median(ratios):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rounds", type=int, nargs="?", default=3)
    parser.add_argument("epochs", type=int, nargs="?", default=3)
    parser.add_argument("threads", type=int, nargs="?", default=0)
    parser.add_argument("--features", action="store_true", help="also with EMA, Mixup, RandAugment, channels-last")
    parser.add_argument("--bf16", action="store_true", help="also bf16 autocast against fp32")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{MODEL} at {PIXELS} px, builtin:digits, batch {BATCH}, {args.epochs} epochs per round, torch threads "
        f"{torch.get_num_threads()}; medians over epochs 2..{args.epochs}"
    )
    against_hand(args.rounds, args.epochs, features=False)
    if args.features:
        against_hand(args.rounds, args.epochs, features=True)
    if args.bf16:
        bf16_against_fp32(args.rounds, args.epochs)


if __name__ == "__main__":
    main()
