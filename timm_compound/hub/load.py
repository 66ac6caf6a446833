"""Loading weights safely: every path checks files, plan and tensor shapes before timm reads a byte.

`build(plan, pretrained=True)` (what registered names and `compound_scaled_from_plan` call) and
`from_hub(repo)` resolve where the weights are (a Hub repo, a `local-dir:` folder, a local file),
refuse anything but `model.safetensors`, check the published plan and the tensor shapes against
the plan being built, and only then hand timm a local safetensors file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.nn as nn

from timm_compound.errors import CompoundError

LOCAL_DIR = "local-dir:"
from timm_compound.hub.config import WEIGHTS_NAME, read_config, same_structure
from timm_compound.hub.files import fetch, local_files, split_revision
from timm_compound.scaling import build as scaling_build
from timm_compound.scaling import timm_adapter
from timm_compound.scaling.plan import ScalePlan
from timm_compound.scaling.plan import plan as make_plan
from timm_compound.scaling.weights import check_weights


def safe_pretrained_cfg(scaled: ScalePlan, cfg: Any, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """The pretrained_cfg timm should load from: the same cfg, its weights checked and pointed at a local
    .safetensors file, so timm never falls back to a pickle.
    """
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    source = cfg.get("source") or ""
    if cfg.get("state_dict") is not None:
        return cfg  # an in-memory state dict: nothing to fetch or unpickle
    if source == "local-dir":
        where = str(cfg.get("file"))
        config_path, weights = local_files(Path(cfg.get("file") or ""))
    elif cfg.get("file"):
        weights, config_path, where = Path(cfg["file"]), None, str(cfg["file"])
    elif cfg.get("hf_hub_id"):
        filename = cfg.get("hf_hub_filename") or WEIGHTS_NAME
        if filename != WEIGHTS_NAME:
            raise CompoundError(f"{cfg['hf_hub_id']}: hf_hub_filename {filename!r} is not {WEIGHTS_NAME}")
        repo, rev = split_revision(cfg["hf_hub_id"])
        where = f"{repo}@{rev}" if rev else repo
        _, config_path, weights = fetch(repo, rev, cache_dir)
    else:
        raise CompoundError(
            f"weights from {cfg.get('url')!r}: timm-compound loads only {WEIGHTS_NAME} from the Hub, a folder or a local file"
        )

    model_args = {"num_classes": cfg.get("num_classes"), "in_chans": (cfg.get("input_size") or (3,))[0]}
    if config_path is not None:
        config, published = read_config(config_path, where)
        if not same_structure(published, scaled):
            raise CompoundError(f"{where} holds a different model than {scaled.base} at this plan: "
                                f"depths {published.depths}, widths {published.widths}, resolution {published.resolution}")
        model_args = {**(config.get("model_args") or {}), "num_classes": config.get("num_classes", cfg.get("num_classes"))}
        model_args.setdefault("in_chans", (config["pretrained_cfg"].get("input_size") or (3,))[0])
    check_weights(scaled, weights, model_args, where)
    return {**cfg, "file": str(weights), "source": "", "num_classes": model_args["num_classes"]}


def build(
    plan: ScalePlan,
    *,
    pretrained: bool = False,
    name: str | None = None,
    hf_hub_id: str | None = None,
    **timm_kwargs,
) -> nn.Module:
    """Build the timm model a plan describes; `timm_kwargs` go to timm as for any model.

    The base's own entrypoint runs, so `features_only`, `num_classes`, `drop_path_rate`
    and the rest behave as for the base. The plan is attached as `model.compound_plan`.
    With `pretrained=True` the weights the pretrained_cfg points at are checked first
    (safetensors only, shapes equal to the plan's model) and never unpickled.
    """
    if not pretrained:
        return scaling_build.build(plan, name=name, hf_hub_id=hf_hub_id, **timm_kwargs)
    cfg = scaling_build.pretrained_cfg(plan, name, hf_hub_id)
    given_cfg = timm_kwargs.get("pretrained_cfg")
    if not timm_adapter.has_weights(given_cfg or cfg):
        raise CompoundError(
            f"no weights are published for {name or scaling_build.default_name(plan)}: build it with pretrained=False, "
            "or load a published model with timm.create_model('hf-hub:<repo>', pretrained=True)"
        )
    checked = safe_pretrained_cfg(plan, given_cfg or cfg, timm_kwargs.get("cache_dir"))
    model = scaling_build.build(plan, name=name, hf_hub_id=hf_hub_id, weights_cfg=checked, **timm_kwargs)
    # report where the weights came from, not the checked cache file
    source_cfg = given_cfg.to_dict() if hasattr(given_cfg, "to_dict") else dict(given_cfg or cfg)
    model.pretrained_cfg.update(file=source_cfg.get("file"), source=source_cfg.get("source"))
    return model


def scale(
    base: str,
    phi: float | None = None,
    *,
    d: float | None = None,
    w: float | None = None,
    r: float | None = None,
    resolution: int | None = None,
    coefficients: Any = None,
    pretrained: bool = False,
    allow_oversize: bool = False,
    **timm_kwargs,
) -> nn.Module:
    """Plan and build a scaled `base` in one call: ``scale("resnet18", phi=2, num_classes=10)``."""
    scaled = make_plan(base, phi, d=d, w=w, r=r, resolution=resolution, coefficients=coefficients,
                       allow_oversize=allow_oversize)
    return build(scaled, pretrained=pretrained, allow_oversize=allow_oversize, **timm_kwargs)


def from_hub(repo_id: str, revision: str | None = None, **timm_kwargs) -> nn.Module:
    """Load a timm-compound repo ('org/name' or 'org/name@rev', or a folder as 'local-dir:PATH');
    checks files, plan and tensor shapes before timm loads anything. `timm_kwargs` go to
    `timm.create_model` (pretrained defaults to True)."""
    if repo_id.startswith(LOCAL_DIR):
        return from_dir(repo_id[len(LOCAL_DIR):], **timm_kwargs)
    repo, rev = split_revision(repo_id, revision)
    sha, config_path, weights = fetch(repo, rev, timm_kwargs.get("cache_dir"))
    return _checked_create(f"hf-hub:{repo}@{sha}", f"{repo}@{sha}", config_path, weights, timm_kwargs)


def from_dir(folder: str | Path, **timm_kwargs) -> nn.Module:
    """Load a published folder (what `save_to_dir` or `publish --to-dir` wrote) with every check
    `from_hub` makes; timm's own `local-dir:` loader does not check plain-timm (ResNet-style) folders."""
    folder = Path(folder)
    config_path, weights = local_files(folder)
    return _checked_create(f"{LOCAL_DIR}{folder}", str(folder), config_path, weights, timm_kwargs)


def _checked_create(source: str, where: str, config_path: Path, weights: Path, timm_kwargs: dict[str, Any]) -> nn.Module:
    import timm

    config, scaled = read_config(config_path, where)
    timm_kwargs.setdefault("pretrained", True)
    if timm_kwargs["pretrained"]:
        check_weights(scaled, weights, {**(config.get("model_args") or {}), "num_classes": config.get("num_classes")}, where)
    model = timm.create_model(source, **timm_kwargs)
    if not isinstance(getattr(model, "compound_plan", None), ScalePlan):
        model.compound_plan = scaled
    return model
