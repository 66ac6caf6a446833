"""From splits to batches: timm's transforms at the model's data config, and a data order that is a
pure function of (seed, epoch), so a resumed run sees exactly the batches an uninterrupted one saw.

Training uses torch's DistributedSampler in every case (one replica when not distributed): it
shuffles with `seed + epoch` and shards by rank. Evaluation shards without padding (rank::world),
so every validation image is counted exactly once when the per-rank sums are added up.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from timm_compound.errors import CompoundError
from timm_compound.train.data import Split


class Samples(Dataset):
    """A split with a transform: yields (image tensor, class index, position in the split)."""

    def __init__(self, split: Split, transform):
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int, int]:
        image, target = self.split.dataset[self.split.indices[position]]
        return self.transform(image), int(target), position


def make_transforms(
    data_config: dict[str, Any],
    train_resolution: int,
    resolution: int,
    *,
    augment: bool,
    crop_pct: float | None,
    aa: str | None = None,
    reprob: float = 0.0,
) -> tuple[Any, Any]:
    """timm's training transform at `train_resolution` (no augmentation when `augment` is False; `aa`
    an AutoAugment/RandAugment string and `reprob` random erasing, as timm's train.py spells them) and
    its evaluation transform at `resolution`, with the model's mean, std and interpolation."""
    return (
        train_transform(data_config, train_resolution, augment=augment, aa=aa, reprob=reprob),
        eval_transform(data_config, resolution, crop_pct=crop_pct),
    )


def train_transform(
    data_config: dict[str, Any], pixels: int, *, augment: bool, aa: str | None = None, reprob: float = 0.0
) -> Any:
    import timm.data

    common = dict(interpolation=data_config["interpolation"], mean=data_config["mean"], std=data_config["std"])
    extra = dict(auto_augment=aa, re_prob=reprob, re_mode="pixel", re_count=1) if augment else {}
    try:
        return timm.data.create_transform(pixels, is_training=True, no_aug=not augment, **common, **extra)
    except (AssertionError, ValueError, KeyError, IndexError) as error:
        raise CompoundError(
            f"aa {aa!r} is not an augmentation timm knows ({type(error).__name__}: {error}); "
            "examples: rand-m9-mstd0.5-inc1, augmix-m5-w4-d2, original, v0"
        ) from None


def eval_transform(data_config: dict[str, Any], pixels: int, *, crop_pct: float | None) -> Any:
    import timm.data

    return timm.data.create_transform(
        pixels,
        is_training=False,
        crop_pct=crop_pct or data_config["crop_pct"],
        crop_mode=data_config.get("crop_mode"),
        interpolation=data_config["interpolation"],
        mean=data_config["mean"],
        std=data_config["std"],
    )


def _seed_worker(worker_id: int) -> None:
    """numpy and random in a loader worker follow torch's per-worker seed (timm's augmentations use both)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class TrainBatches:
    """The training loader; `epoch(e)` reseeds the shuffle and the workers' seeds for epoch e."""

    def __init__(
        self,
        samples: Samples,
        *,
        batch_size: int,
        seed: int,
        rank: int,
        world_size: int,
        workers: int,
        pin_memory: bool,
    ):
        self.seed = seed
        self.sampler = DistributedSampler(samples, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        self.generator = torch.Generator()
        self.loader = DataLoader(
            samples,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=workers,
            drop_last=True,
            pin_memory=pin_memory,
            worker_init_fn=_seed_worker if workers else None,
            generator=self.generator,
            persistent_workers=False,
        )

    def __len__(self) -> int:
        return len(self.loader)

    def epoch(self, epoch: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        self.generator.manual_seed(self.seed * 100_003 + epoch)
        return self.loader


def eval_loader(
    samples: Samples, *, batch_size: int, rank: int, world_size: int, workers: int, pin_memory: bool
) -> DataLoader:
    shard = list(range(rank, len(samples), world_size))
    return DataLoader(
        torch.utils.data.Subset(samples, shard),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin_memory,
        worker_init_fn=_seed_worker if workers else None,
    )
