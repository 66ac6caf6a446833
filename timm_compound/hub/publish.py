"""Publishing a scaled model: its files in a folder (`save_to_dir`), or one commit on the Hub (`publish`).

The files: `model.safetensors` (never a pickle), `config.json` (timm's format plus the plan,
see `timm_compound.hub.config`) and a `README.md` model card.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from timm_compound.errors import CompoundError, UnknownModelError
from timm_compound.hub import card
from timm_compound.hub.config import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, hub_config
from timm_compound.hub.files import check_repo_id, check_revision, first_line, hub_errors
from timm_compound.scaling.build import build, pretrained_cfg
from timm_compound.scaling.catalog import registered
from timm_compound.scaling.norms import with_norm
from timm_compound.scaling.plan import ScalePlan
from timm_compound.scaling.weights import (
    check_shapes,
    describe,
    safetensors_shapes,
    state_shapes,
)


def _read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    import safetensors.torch

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CompoundError(f"{path}: weights must be a .safetensors state dict; timm-compound never unpickles")
    if not path.is_file():
        raise CompoundError(f"{path}: no such weights file")
    safetensors_shapes(path, str(path))  # a clear error for a corrupt file
    return safetensors.torch.load_file(str(path), device="cpu")


def _classes_from(tensors: dict[str, torch.Tensor] | None, classifier: Any) -> dict[str, int]:
    if tensors is None or not isinstance(classifier, str) or f"{classifier}.weight" not in tensors:
        return {}
    return {"num_classes": int(tensors[f"{classifier}.weight"].shape[0])}


def resolve(
    model_or_name: Any, weights: str | Path | None = None, norm: str | None = None
) -> tuple[nn.Module, ScalePlan, str | None, dict[str, torch.Tensor], str]:
    """(model, plan, name, state dict to publish, where the weights come from) for a model, a registered
    name or a plan (built with `norm`, when given); the origin is 'file' (`weights`), 'model' (the given
    module's) or 'random' (fresh)."""
    import timm

    tensors = _read_weights(weights) if weights is not None else None
    if isinstance(model_or_name, nn.Module):
        model = model_or_name
        scaled = getattr(model, "compound_plan", None)
        if not isinstance(scaled, ScalePlan):
            raise CompoundError("the model was not built by timm-compound (it has no compound_plan)")
        name = (getattr(model, "pretrained_cfg", None) or {}).get("architecture")
        if norm is not None and norm != scaled.norm:
            raise CompoundError(f"norm={norm!r}: this model is already built, with {scaled.norm} norm")
    elif isinstance(model_or_name, ScalePlan):
        scaled, name = with_norm(model_or_name, norm), None
        model = build(scaled, **_classes_from(tensors, pretrained_cfg(scaled).get("classifier")))
    elif isinstance(model_or_name, str):
        if model_or_name not in registered():
            raise UnknownModelError(f"{model_or_name!r} is not a registered variant; pass a model or a plan")
        name = model_or_name
        classifier = timm.models.get_pretrained_cfg(name).classifier
        model = timm.create_model(name, norm=norm, **_classes_from(tensors, classifier))
        scaled = model.compound_plan
    else:
        raise CompoundError(f"cannot publish {type(model_or_name).__name__}: give a model, a registered name or a plan")
    if not hasattr(model, "num_classes") or not hasattr(model, "pretrained_cfg"):
        raise CompoundError("only classification models can be published (not features_only wrappers)")
    state = model.state_dict()
    if any(t.is_meta for t in state.values()):
        raise CompoundError("the model is on the meta device: it has no weights to publish")
    origin = "model" if isinstance(model_or_name, nn.Module) else "random"
    if tensors is not None:
        check_shapes(state_shapes(state), state_shapes(tensors), str(weights), describe(scaled, model.num_classes))
        state, origin = tensors, "file"
    return model, scaled, name, state, origin


def save_to_dir(
    model_or_name: Any,
    directory: str | Path,
    *,
    weights: str | Path | None = None,
    repo_id: str | None = None,
    training: dict[str, Any] | None = None,
    overwrite: bool = False,
    norm: str | None = None,
) -> Path:
    """Write model.safetensors, config.json and README.md to `directory` (loadable with `local-dir:`).

    `repo_id` only changes the card's usage snippet (hf-hub:<repo_id> instead of local-dir:<path>).
    `training` (plain data: dataset, measured accuracy, settings; see `card.render`) adds a
    training section to the card; `timm-compound publish --run RUN` fills it from the run folder.
    A folder that is not empty is refused, naming what would be replaced, unless `overwrite=True`
    (which replaces the three files and leaves anything else in the folder alone).
    """
    import safetensors.torch

    directory = Path(directory)
    check_output_dir(directory, overwrite=overwrite)  # before building anything
    model, scaled, name, state, origin = resolve(model_or_name, weights, norm)
    config = hub_config(model, scaled, name)
    source = f"hf-hub:{repo_id}" if repo_id else f"local-dir:{directory.resolve()}"
    text = card.render(config, scaled, source, model, training, weights_origin=origin)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    directory.mkdir(parents=True, exist_ok=True)
    # all three files appear together or not at all: written beside, then moved in
    with tempfile.TemporaryDirectory(prefix=".timm-compound-", dir=directory) as tmp:
        staged = Path(tmp)
        safetensors.torch.save_file(tensors, str(staged / WEIGHTS_NAME), metadata={"format": "pt"})
        (staged / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (staged / CARD_NAME).write_text(text, encoding="utf-8")
        mode = 0o666 & ~_umask()  # safetensors writes 0600; the weights get the same mode as the rest
        for file in (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME):
            os.chmod(staged / file, mode)
            os.replace(staged / file, directory / file)
    return directory


def check_output_dir(directory: Path, *, overwrite: bool = False) -> None:
    """Refuse, before any work, a folder that cannot be made or written (a file, /dev/null, read-only),
    and one that is not empty unless `overwrite` (the error lists what would be replaced)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CompoundError(f"{directory} exists and is not a folder: give a folder to write the model into")
    if directory.is_dir() and not overwrite:
        try:
            present = sorted(p.name for p in directory.iterdir())
        except OSError as error:
            raise CompoundError(f"cannot write into {directory}: {error.strerror or error}") from None
        if present:
            replaced = [name for name in (CARD_NAME, CONFIG_NAME, WEIGHTS_NAME) if name in present]
            others = len(present) - len(replaced)
            what = f"it would replace {', '.join(replaced)}" if replaced else "nothing in it would be replaced"
            kept = f" ({others} other entr{'y' if others == 1 else 'ies'} would stay)" if others else ""
            raise CompoundError(
                f"{directory} is not empty: {what}{kept}; pass --overwrite (overwrite=True) to "
                "write there anyway, or give an empty or new folder"
            )
    existing = next((parent for parent in (directory, *directory.parents) if parent.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise CompoundError(f"cannot write into {directory}: {existing} is not a writable folder")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def publish(
    model_or_name: Any,
    repo_id: str,
    *,
    weights: str | Path | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    training: dict[str, Any] | None = None,
    norm: str | None = None,
) -> str:
    """Publish to the Hub in one commit (a failed upload leaves the repo as it was); returns the commit sha.
    `norm` publishes a registered name or plan built with that norm (``scaling.norms``)."""
    from huggingface_hub import CommitOperationAdd, HfApi

    check_repo_id(repo_id)
    if revision is not None:
        check_revision(revision)
    with tempfile.TemporaryDirectory(prefix="timm-compound-publish-") as tmp:
        folder = save_to_dir(model_or_name, tmp, weights=weights, repo_id=repo_id, training=training, norm=norm)
        plan_json = json.loads((folder / CONFIG_NAME).read_text())["compound_plan"]
        message = commit_message or f"timm-compound: {plan_json['base']} scaled to {_short(plan_json)}"
        api = HfApi(endpoint=endpoint, token=token)
        operations = [
            CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name))
            for name in (CONFIG_NAME, CARD_NAME, WEIGHTS_NAME)
        ]
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.create_commit(repo_id, operations, commit_message=message, revision=revision)
        except (*hub_errors(), RuntimeError) as error:
            raise CompoundError(f"publishing to {repo_id} failed, nothing was committed: {first_line(error)}") from None
    return info.oid


def _short(plan_json: dict[str, Any]) -> str:
    if plan_json.get("phi") is not None:
        return f"phi={plan_json['phi']:g}"
    mult = plan_json["multipliers"]
    return f"d={mult['depth']:g} w={mult['width']:g} r={mult['resolution']:g}"
