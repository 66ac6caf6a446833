"""By hand: `python benchmarks/bench_train.py [rounds] [epochs] [threads]`. timm_compound.train against a minimal loop.

Both train resnet18_cs_phi0 at 32 px on builtin:digits (1,438 training images) with batch 64 and
SGD (nesterov momentum 0.9, weight decay 2e-5, as timm's "sgd"), from the same data pipeline
(timm's transforms). The hand-written loop is forward, cross-entropy, backward, step, nothing else.
Images/s counts the training loop only (data loading included, evaluation excluded) for both.

Side by side in one process, epoch by epoch: after each epoch of `train`, its `on_epoch` hook runs
one epoch of the hand-written loop, so both see the same machine load. The first epoch of each is
a warm-up and left out; the ratio train / hand-written is printed per round and as the median.
`threads` sets torch's CPU threads (1 gives steadier numbers on a machine shared with other work).
"""

from __future__ import annotations

import statistics
import sys
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
from timm_compound.train.settings import default_lr

MODEL, PIXELS, BATCH = "resnet18_cs_phi0", 32, 64


class HandWritten:
    """The plainest training loop over the same model, data and batch."""

    def __init__(self, seed: int):
        torch.manual_seed(seed)
        self.model = build(with_resolution(registered_plan(MODEL), PIXELS), num_classes=10).train()
        config = timm.data.resolve_model_data_config(self.model)
        transform, _ = make_transforms(config, PIXELS, PIXELS, augment=False, crop_pct=1.0)
        self.loader = DataLoader(Samples(load_data("builtin:digits").train, transform), batch_size=BATCH,
                                 shuffle=True, drop_last=True)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=default_lr("sgd", BATCH), momentum=0.9,
                                         nesterov=True, weight_decay=2e-5)

    def epoch(self) -> float:
        """One epoch; its images per second."""
        images, start = 0, time.perf_counter()
        for inputs, targets, _ in self.loader:
            loss = F.cross_entropy(self.model(inputs), targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            images += targets.shape[0]
        return images / (time.perf_counter() - start)


def main(rounds: int = 3, epochs: int = 3, threads: int = 0) -> None:
    if threads:
        torch.set_num_threads(threads)
    print(f"{MODEL} at {PIXELS} px, builtin:digits, batch {BATCH}, {epochs} epochs per round, torch threads "
          f"{torch.get_num_threads()}; medians over epochs 2..{epochs}")
    print(f"{'round':>5} {'hand img/s':>11} {'train img/s':>12} {'train/hand':>11} {'train epoch s':>14} {'top-1':>7}")
    ratios = []
    for index in range(1, rounds + 1):
        hand = HandWritten(seed=index)
        hand_rates: list[float] = []
        result = train(MODEL, "builtin:digits", epochs=epochs, batch_size=BATCH, resolution=PIXELS, seed=index,
                       progress=False, on_epoch=lambda epoch, metrics: hand_rates.append(hand.epoch()))
        ours = [row.images_per_second for row in result.history]
        ratio = statistics.median(a / b for a, b in zip(ours[1:], hand_rates[1:]))
        ratios.append(ratio)
        seconds = statistics.median(row.seconds for row in result.history[1:])
        print(f"{index:>5} {statistics.median(hand_rates[1:]):11.1f} {statistics.median(ours[1:]):12.1f} "
              f"{ratio:11.3f} {seconds:14.2f} {result.top1:6.1f}%", flush=True)
    ratio = statistics.median(ratios)
    print(f"median train/hand-written throughput: {ratio:.3f} (overhead {100 * (1 - ratio):+.1f}%)")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
