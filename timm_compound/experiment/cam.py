"""Class activation maps (Grad-CAM, from the `grad-cam` package, pytorch_grad_cam) on a model's stage:
where in the image the evidence for a class comes from (the EfficientNet paper's Figure 7).

The layer is a stage the model's rule names in `stage_modules` (a timm model no rule covers uses timm's
own `feature_info`), numbered from 1: by default the last one whose feature map is at least 4x4 at the
input size (a 1x1 map cannot localise), or the one `stage` forces. A map that comes out constant is
flagged with the reason. Images go through the
model's evaluation transform at its resolution, and each map is drawn over exactly the pixels the
model saw (denormalised), so a centre crop shows as one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from timm_compound.errors import CompoundError, UnknownModelError
from timm_compound.scaling.stages import as_spec, stage_blocks, stage_modules, stage_paths
from timm_compound.train.loaders import make_transforms

DPI = 150


MIN_MAP = 4  # a stage whose feature map is smaller than 4x4 cannot say where in the image the evidence is


@dataclass(frozen=True)
class Stage:
    """The stage the maps are computed on: `number` counts from 1 ("stage 4 of 4"), `size` is its feature
    map (height, width) at the input size, `note` says why it was chosen or warns when it was forced small."""

    number: int
    count: int
    name: str
    module: nn.Module
    size: tuple[int, int]
    resolution: int
    note: str | None = None

    def __str__(self) -> str:
        return (
            f"stage {self.number} of {self.count} ({self.name}, {self.size[0]}x{self.size[1]} at {self.resolution} px)"
        )


def _stages(model: nn.Module) -> tuple[list[tuple[str, nn.Module]], str]:
    """(name, module) of every stage, in order, and where they came from."""
    scaled = getattr(model, "compound_plan", None)
    where = getattr(getattr(scaled, "rule", None), "stage_modules", None)
    if where is not None:
        if as_spec(where).split_at:  # a stage that is a run of modules: its last block stands for it
            return [stage[-1] for stage in stage_blocks(model, where)], "rule stage_modules"
        paths = stage_paths(model, where)
        return list(zip(paths, stage_modules(model, where))), "rule stage_modules"
    info = getattr(model, "feature_info", None)
    if info:
        names = [item["module"] for item in info] if isinstance(info, list) else list(info.module_name())
        return [(name, model.get_submodule(name)) for name in names], "timm feature_info"
    raise CompoundError(
        f"cannot tell the stages of {type(model).__name__}: no rule stage_modules and no timm feature_info"
    )


def _map_sizes(model: nn.Module, modules: list[nn.Module], resolution: int) -> list[tuple[int, int]]:
    """Each module's output (height, width) for one image at `resolution` px (one forward pass, no gradients)."""
    sizes: dict[int, tuple[int, int]] = {}

    def record(index: int):
        def hook(_module, _inputs, output) -> None:  # returns None: the output is left as it is
            tensor = output[0] if isinstance(output, (tuple, list)) else output
            sizes.setdefault(index, tuple(tensor.shape[-2:]))

        return hook

    hooks = [module.register_forward_hook(record(index)) for index, module in enumerate(modules)]
    channels = (getattr(model, "pretrained_cfg", None) or {}).get("input_size", (3,))[0]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, channels, resolution, resolution))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return [sizes.get(index, (0, 0)) for index in range(len(modules))]


def choose_stage(model: nn.Module, stage: int | None, resolution: int) -> Stage:
    """The stage to explain. `stage`: 1..N or -1, -2, ... from the end; None picks the last stage whose
    feature map is at least 4x4 at `resolution` (saying so when that is not the last one). A forced stage
    below 4x4 comes with a warning: its maps cannot localise anything."""
    stages, source = _stages(model)
    count = len(stages)
    if stage is not None:
        if isinstance(stage, bool) or not isinstance(stage, int) or stage == 0 or not -count <= stage <= count:
            raise CompoundError(
                f"stage {stage!r} does not exist: {type(model).__name__} has {count} stages "
                f"({source}), numbered 1 to {count} (or -1 for the last)"
            )
    sizes = _map_sizes(model, [module for _, module in stages], resolution)
    if stage is None:
        large = [k for k, (h, w) in enumerate(sizes) if min(h, w) >= MIN_MAP]
        index = large[-1] if large else count - 1
        note = None
        if index != count - 1:
            h, w = sizes[-1]
            note = (
                f"stage {count} of {count} ({stages[-1][0]}) is {h}x{w} at {resolution} px, too small to localise "
                f"anything: using stage {index + 1} of {count} instead (pass --stage {count} to force it)"
            )
        elif not large:
            h, w = sizes[-1]
            note = (
                f"every stage is below {MIN_MAP}x{MIN_MAP} at {resolution} px (the last is {h}x{w}): "
                "the maps cannot localise much; use a larger --resolution"
            )
    else:
        index = stage - 1 if stage > 0 else count + stage
        h, w = sizes[index]
        note = (
            None
            if min(h, w) >= MIN_MAP
            else (
                f"warning: stage {index + 1} of {count} ({stages[index][0]}) is {h}x{w} at {resolution} px: its maps "
                f"cannot localise anything (a 1x1 map is flat); choose an earlier stage or a larger --resolution"
            )
        )
    name, module = stages[index]
    return Stage(index + 1, count, name, module, sizes[index], resolution, note)


def read_images(paths: list[str | Path]):
    """PIL images (RGB), a CompoundError naming the first file that cannot be read."""
    from PIL import Image, UnidentifiedImageError

    if not paths:
        raise CompoundError("give at least one image")
    images = []
    for path in paths:
        try:
            with Image.open(path) as opened:
                images.append(opened.convert("RGB"))
        except FileNotFoundError:
            raise CompoundError(f"{path}: no such image file") from None
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise CompoundError(f"{path}: cannot be read as an image ({error})") from None
    return images


@dataclass
class Maps:
    """Grad-CAM of a batch: overlays (N, H, W, 3 in [0, 1]), the class each map explains, and predictions."""

    overlays: np.ndarray
    inputs: np.ndarray
    targets: list[int]
    predicted: list[int]
    probability: list[float]  # of the predicted class
    stage: Stage | None = None
    flat: list[str | None] | None = None  # per image: why its map is constant, or None

    def flat_reason(self, index: int) -> str | None:
        return None if self.flat is None else self.flat[index]


def _flat_reason(grey: np.ndarray, stage: Stage) -> str | None:
    """Why a map is constant (no pixel differs), or None when it is not."""
    if float(grey.max() - grey.min()) > 1e-6:
        return None
    h, w = stage.size
    if h * w == 1:
        return f"{stage} has a 1x1 feature map: one value cannot show where the evidence is"
    return (
        f"the class's gradient at {stage} is zero or every weighted activation is negative "
        "(Grad-CAM keeps only positive evidence)"
    )


def compute(
    model: nn.Module,
    images: list,
    *,
    resolution: int,
    targets: list[int] | None = None,
    crop_pct: float | None = None,
    stage: int | None = None,
) -> Maps:
    """Grad-CAM of `images` (PIL) for `targets` (default: the predicted classes) on a stage (see
    `choose_stage`: None picks the last one at least 4x4); constant maps are flagged with the reason."""
    import timm.data
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = model.eval()
    config = timm.data.resolve_model_data_config(model)
    _, transform = make_transforms(config, resolution, resolution, augment=False, crop_pct=crop_pct)
    batch = torch.stack([transform(image.convert("RGB")) for image in images])
    chosen = choose_stage(model, stage, resolution)
    layer = chosen.module
    wanted = None if targets is None else [ClassifierOutputTarget(int(t)) for t in targets]
    try:
        with torch.enable_grad(), GradCAM(model=model, target_layers=[layer]) as cam:
            grey = cam(input_tensor=batch, targets=wanted)
            logits = cam.outputs.detach()
    except (RuntimeError, ValueError, IndexError) as error:
        raise CompoundError(f"Grad-CAM failed on {type(model).__name__}'s layer: {error}") from None
    probabilities = logits.softmax(-1)
    predicted = probabilities.argmax(-1)
    mean = torch.tensor(config["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(config["std"]).view(1, 3, 1, 1)
    shown = (batch * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy().astype(np.float32)
    overlays = np.stack([show_cam_on_image(image, mask, use_rgb=True) for image, mask in zip(shown, grey)]) / 255.0
    return Maps(
        overlays,
        shown,
        [int(t) for t in (targets if targets is not None else predicted.tolist())],
        predicted.tolist(),
        [float(probabilities[i, p]) for i, p in enumerate(predicted.tolist())],
        stage=chosen,
        flat=[_flat_reason(mask, chosen) for mask in grey],
    )


@dataclass
class GridRow:
    label: str
    maps: Maps


def grid(
    rows: list[GridRow], path: Path, *, column_titles: list[str], class_names: list[str] | None, title: str
) -> Path:
    """One row per model (its maps over each image), the inputs as the first row."""
    from matplotlib.figure import Figure

    count = len(column_titles)
    figure = Figure(figsize=(1.6 * count + 1.8, 1.6 * (len(rows) + 1) + 0.6), layout="constrained")
    axes = figure.subplots(len(rows) + 1, count, squeeze=False)
    name = (lambda k: class_names[k]) if class_names else str
    for column in range(count):
        axis = axes[0][column]
        axis.imshow(rows[0].maps.inputs[column])
        axis.set_title(column_titles[column], fontsize=9)
    axes[0][0].set_ylabel("input", fontsize=9)
    for index, row in enumerate(rows, 1):
        for column in range(count):
            axis = axes[index][column]
            axis.imshow(row.maps.overlays[column])
            right = row.maps.predicted[column] == row.maps.targets[column]
            flat = " (flat map)" if row.maps.flat_reason(column) else ""
            axis.set_title(
                f"pred {name(row.maps.predicted[column])} {100 * row.maps.probability[column]:.0f}%{flat}",
                fontsize=8,
                color="darkgreen" if right else "firebrick",
            )
        axes[index][0].set_ylabel(row.label, fontsize=9)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(title, fontsize=11)
    figure.savefig(str(path), dpi=DPI)
    return path


def _timm_only(model: Any, weights: str | Path) -> Any:
    """A timm name no rule covers, built with the class count of its weights' classifier (checked by
    load_trained); anything else unchanged (load_trained builds registered names, bases and plans)."""
    if not isinstance(model, str):
        return model
    import timm

    from timm_compound.scaling.catalog import lookup
    from timm_compound.scaling.weights import safetensors_shapes

    try:
        lookup(model)
        return model
    except UnknownModelError:
        if not timm.is_model(model):
            raise CompoundError(f"{model!r} is not a timm model or a registered variant") from None
    with torch.device("meta"):
        classifier = timm.create_model(model).pretrained_cfg.get("classifier")
    shapes = safetensors_shapes(Path(weights), str(weights))
    if not isinstance(classifier, str) or f"{classifier}.weight" not in shapes:
        raise CompoundError(f"{weights}: no {classifier}.weight tensor to tell {model}'s class count from")
    return timm.create_model(model, num_classes=shapes[f"{classifier}.weight"][0])


def class_activation_maps(
    model: Any,
    weights: str | Path,
    images: list[str | Path],
    out: str | Path,
    *,
    resolution: int | None = None,
    target: int | None = None,
    stage: int | None = None,
    say: Callable[[str], None] | None = None,
    norm: str | None = None,
) -> list[Path]:
    """Grad-CAM of a trained model on your own images: `out/<image>.cam.png` per image (the image and its
    map side by side, titled with the class explained and the prediction). `model` is a registered name,
    a base or a ScalePlan (as for `evaluate`), `weights` its .safetensors; `target` a class index
    (default: each image's predicted class); `stage` 1..N or negative from the end (default: the last
    stage at least 4x4 at the input size); `norm` the norm the weights were trained with. `say` gets the notes: which stage and why, warnings, and each
    map that came out constant with the reason. Nothing is written when an input is refused."""
    from matplotlib.figure import Figure

    from timm_compound.train.models import load_trained
    from timm_compound.train.setup import resolve_resolutions

    say = say or (lambda line: None)
    pictures = read_images(list(images))
    chosen = load_trained(_timm_only(model, weights), weights, resolution=resolution, norm=norm)
    pixels, _ = resolve_resolutions(chosen, resolution, None)
    classes = chosen.model.num_classes
    if target is not None and (isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < classes):
        raise CompoundError(f"target must be a class index in 0..{classes - 1}, got {target!r}")
    where = choose_stage(chosen.model, stage, pixels)  # refused here, before the output folder exists
    if where.note:
        say(where.note)
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CompoundError(f"cannot write {folder}: {error.strerror or error}") from None
    maps = compute(
        chosen.model,
        pictures,
        resolution=pixels,
        targets=None if target is None else [target] * len(pictures),
        stage=where.number,
    )
    written = []
    for index, path in enumerate(images):
        figure = Figure(figsize=(6.4, 3.6), layout="constrained")
        left, right = figure.subplots(1, 2)
        left.imshow(maps.inputs[index])
        left.set_title(f"input ({pixels} px)", fontsize=10)
        right.imshow(maps.overlays[index])
        flat = maps.flat_reason(index)
        right.set_title(f"Grad-CAM of class {maps.targets[index]}" + (" (flat map)" if flat else ""), fontsize=10)
        for axis in (left, right):
            axis.set_xticks([])
            axis.set_yticks([])
        figure.suptitle(
            f"{chosen.spec}: predicted {maps.predicted[index]} ({100 * maps.probability[index]:.1f}%); "
            f"{where}" + (f"\nflat map: {flat}" if flat else ""),
            fontsize=9,
        )
        stem = Path(path).stem
        file = folder / (
            f"{stem}.cam.png" if [Path(p).stem for p in images].count(stem) == 1 else f"{stem}-{index}.cam.png"
        )
        figure.savefig(str(file), dpi=DPI)
        written.append(file)
        if flat:
            say(f"warning: {file.name}: the map is flat (constant): {flat}")
    return written
