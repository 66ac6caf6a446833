"""The built-in offline dataset: scikit-learn's handwritten digits, no download ever.

`builtin:digits` is the UCI optical-recognition digits set that ships inside scikit-learn
(`sklearn.datasets.load_digits`): 1,797 grey 8x8 images of the digits 0-9 with 17 grey levels,
written by 43 people. It is real data, small enough to train on a laptop CPU in seconds, and
upsampled to the model's resolution: resolution scaling means little on images this small.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from timm_compound.errors import CompoundError

BUILTIN = {"digits": "scikit-learn's 8x8 handwritten digits (load_digits): 1,797 images, 10 classes"}
SPLIT_SEED = 0  # the train/validation split never depends on the training seed
VAL_FRACTION = 0.2


class ImageList(Dataset):
    """In-memory PIL images and integer labels, with a timm transform applied on access."""

    def __init__(self, images: list[Image.Image], targets: list[int], classes: list[str], transform=None):
        self.images, self.targets, self.classes, self.transform = images, targets, classes, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.images[index]
        return (self.transform(image) if self.transform is not None else image), self.targets[index]


def load(name: str) -> tuple[ImageList, dict[str, Any]]:
    """The whole built-in dataset `name` (RGB PIL images) and a description for run.json."""
    if name not in BUILTIN:
        raise CompoundError(
            f"unknown built-in dataset 'builtin:{name}'; built in: " + ", ".join(f"builtin:{key}" for key in BUILTIN)
        )
    try:
        import sklearn
        from sklearn.datasets import load_digits
    except ImportError:
        raise CompoundError("builtin:digits needs scikit-learn: pip install scikit-learn") from None
    digits = load_digits()
    pixels = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 grey levels -> 0..255
    images = [Image.fromarray(image).convert("RGB") for image in pixels]
    classes = [str(int(name)) for name in digits.target_names]
    info = {"source": f"scikit-learn {sklearn.__version__} sklearn.datasets.load_digits", "image_size": 8}
    return ImageList(images, [int(t) for t in digits.target], classes), info
