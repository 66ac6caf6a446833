"""CIFAR-10 and CIFAR-100 from a local folder in torchvision's layout, read without unpickling code.

    ROOT/cifar-10-batches-py/   data_batch_1 ... data_batch_5, test_batch, batches.meta
    ROOT/cifar-100-python/      train, test, meta

The batch files are Python pickles (as the dataset's authors published them). torchvision loads
them with `pickle.load`, which runs whatever a tampered file asks; here a restricted unpickler
admits only what a CIFAR batch holds (dicts, lists, strings, numbers and numpy arrays), so a
tampered file is refused, and every file's shapes and labels are checked. With `download=True`
torchvision fetches and verifies the archive first (it checks the published md5 sums); then the
files are read here, as a user's own copy always is (its md5 sums are not required to match, so a
folder a test writes in the same format works too).
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from timm_compound.errors import CompoundError


@dataclass(frozen=True)
class Layout:
    title: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    names_key: str
    labels_key: str
    classes: int


LAYOUTS = {
    "cifar10": Layout(
        "CIFAR-10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "label_names",
        "labels",
        10,
    ),
    "cifar100": Layout(
        "CIFAR-100", "cifar-100-python", ("train",), ("test",), "meta", "fine_label_names", "fine_labels", 100
    ),
}
PIXELS = 32 * 32 * 3


def _allowed() -> dict[tuple[str, str], Any]:
    reconstruct = np.ndarray((1,)).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    import codecs

    found = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): codecs.encode}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        found[(module, "_reconstruct")] = reconstruct
        found[(module, "scalar")] = scalar
    return found


class _CifarUnpickler(pickle.Unpickler):
    """Only numpy arrays and plain data: any other global in the file is refused."""

    allowed = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused {module}.{name}: a CIFAR batch holds only arrays and plain data"
            ) from None


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CompoundError(
            f"{path.parent}: {path.name} is missing (torchvision's CIFAR layout; "
            "pass download=True / --download to fetch the dataset)"
        )
    try:
        entry = _CifarUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except Exception as error:
        raise CompoundError(f"{path}: not a CIFAR batch file ({type(error).__name__}: {error})") from None
    if not isinstance(entry, dict):
        raise CompoundError(f"{path}: not a CIFAR batch file (a {type(entry).__name__}, not a dict)")
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in entry.items()}


class CifarSplit(Dataset):
    """One split of CIFAR: (PIL image, class index) pairs; `classes` names the classes."""

    def __init__(self, images: np.ndarray, targets: list[int], classes: list[str]):
        self.images, self.targets, self.classes = images, targets, classes

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        from PIL import Image

        return Image.fromarray(self.images[index]), self.targets[index]


def load_split(name: str, root: Path, *, train: bool) -> CifarSplit:
    """`name` is cifar10 or cifar100; the batches of the train or the test split under `root`."""
    layout = LAYOUTS[name]
    folder = root / layout.folder
    if not folder.is_dir():
        raise CompoundError(
            f"{layout.title} not found under {root}: expected {folder}/ in torchvision's layout "
            f"({', '.join(layout.train + layout.test)}, {layout.meta}); pass download=True / --download to fetch it"
        )
    meta = _read(folder / layout.meta)
    classes = meta.get(layout.names_key)
    if not isinstance(classes, list) or len(classes) != layout.classes:
        raise CompoundError(f"{folder / layout.meta}: {layout.names_key} must list {layout.classes} class names")
    arrays, targets = [], []
    for file in layout.train if train else layout.test:
        entry = _read(folder / file)
        data, labels = entry.get("data"), entry.get(layout.labels_key)
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
            raise CompoundError(f"{folder / file}: data must be a uint8 array of rows of {PIXELS} values (32x32x3)")
        if not isinstance(labels, (list, np.ndarray)) or len(labels) != len(data):
            raise CompoundError(f"{folder / file}: {layout.labels_key} must give one label per image ({len(data)})")
        labels = [int(label) for label in labels]
        if any(not 0 <= label < layout.classes for label in labels):
            raise CompoundError(f"{folder / file}: a label is outside 0..{layout.classes - 1}")
        arrays.append(data)
        targets += labels
    images = np.concatenate(arrays).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return CifarSplit(images, targets, [str(name) for name in classes])


def download(name: str, root: Path) -> None:
    """torchvision's download (md5-verified) into `root`, for users online."""
    import torchvision.datasets

    kind = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    try:
        kind(str(root), train=True, download=True)
    except Exception as error:
        raise CompoundError(f"cannot download {LAYOUTS[name].title} into {root}: {error}") from None
