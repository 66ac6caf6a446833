"""Loading weights safely: every path checks files, plan and tensor shapes before timm reads a byte.

Two doors lead to a published model, and both run the same checks:

- timm's own `timm.create_model("local-dir:DIR")` / `"hf-hub:ORG/NAME[@REV]"`: once timm_compound is
  imported, timm asks `timm_source` for the folder's or repo's config. A config that carries a
  `compound_plan` is checked by `published_config` (the id and revision, the files, the JSON, the
  plan against its own rule and the size limits, `model_args` and `pretrained_cfg`) and is then
  always built by the plugin entrypoint `compound_scaled_from_plan`, also when its `architecture`
  names the plain timm base; any other config is timm's business and goes to timm's loader;
- `from_hub(repo)` / `from_dir(folder)`, which require a timm-compound config and take the same door.

The entrypoint builds with `build(plan, pretrained=True)`, which refuses anything but
`model.safetensors`, compares the safetensors header (size, tensor names, shapes, kinds of number)
with the plan being built, and only then hands timm a checked local safetensors file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.nn as nn

from timm_compound.errors import CompoundError
from timm_compound.hub.config import (
    CONFIG_NAME,
    PLAN_ENTRYPOINT,
    WEIGHTS_NAME,
    check_config,
    read_config,
    read_json,
    same_structure,
)
from timm_compound.hub.files import (
    download,
    fetch,
    local_config,
    local_files,
    regular_file,
    repo_files,
    split_revision,
)
from timm_compound.scaling import build as scaling_build
from timm_compound.scaling import timm_adapter
from timm_compound.scaling.plan import ScalePlan
from timm_compound.scaling.plan import plan as make_plan
from timm_compound.scaling.weights import check_weights

LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"


@dataclass(frozen=True)
class Published:
    """A checked timm-compound config.json and where it came from."""

    where: str  # the folder, or org/name@revision
    config: dict[str, Any]
    plan: ScalePlan
    location: dict[str, Any]  # the pretrained_cfg fields that locate its weights, spelt as timm does

    def timm_config(self) -> tuple[dict[str, Any], str, dict[str, Any]]:
        """(pretrained_cfg, architecture, model_args) as timm's config loaders return them: always the plugin
        entrypoint with the plan, so a plain-timm (ResNet-style) config is built and checked like any other."""
        # the plan owns its structure and its norm: model_args may not set them again
        config, owned = self.config, self.plan.rule.structural_args() | set(self.plan.constructor_args) | {"norm"}
        cfg = {**config["pretrained_cfg"], **self.location, "num_classes": config["num_classes"]}
        model_args = {key: value for key, value in (config.get("model_args") or {}).items() if key not in owned}
        model_args["compound_plan"] = config["compound_plan"]
        return cfg, PLAN_ENTRYPOINT, model_args


def published_config(source: str, model_id: str, cache_dir: str | Path | None = None) -> Published | None:
    """The checked config of a folder (`source` "local-dir") or a Hub repo ("hf-hub", `model_id`
    org/name[@rev]); None for a readable JSON object without `compound_plan` (a plain timm model: not
    ours to check). Anything else wrong is a CompoundError naming the folder or repo and the field."""
    if source == "local-dir":
        folder = Path(model_id)
        where, location = str(folder), {"file": str(folder), "source": "local-dir"}
        path = local_config(folder)
    elif source == "hf-hub":
        repo, rev = split_revision(model_id)
        sha, _ = repo_files(repo, rev)
        where, location = f"{repo}@{rev or sha}", {"hf_hub_id": model_id, "source": "hf-hub"}
        path = regular_file(download(repo, CONFIG_NAME, sha, cache_dir), where)
    else:
        raise CompoundError(f"unknown model source {source!r}: local-dir or hf-hub")
    config = read_json(path, where)
    if isinstance(config, dict) and "compound_plan" not in config:
        return None
    config, scaled = check_config(config, where)
    return Published(where, config, scaled, location)


def timm_source(source: str, model_id: str, cache_dir: str | Path | None, timm_loader: Callable[..., Any]):
    """What timm's `local-dir:` / `hf-hub:` config loaders return (timm_adapter.guard_sources installs it):
    a timm-compound config checked and routed to the plugin entrypoint; any other config as timm reads it."""
    published = published_config(source, model_id, cache_dir)
    if published is None:
        return timm_loader(model_id) if source == "local-dir" else timm_loader(model_id, cache_dir=cache_dir)
    return published.timm_config()


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
        regular_file(weights, where)
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
            raise CompoundError(
                f"{where} holds a different model than {scaled.base} at this plan: "
                f"depths {published.depths}, widths {published.widths}, resolution {published.resolution}"
            )
        model_args = {
            **(config.get("model_args") or {}),
            "num_classes": config.get("num_classes", cfg.get("num_classes")),
        }
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
    scaled = make_plan(
        base, phi, d=d, w=w, r=r, resolution=resolution, coefficients=coefficients, allow_oversize=allow_oversize
    )
    return build(scaled, pretrained=pretrained, allow_oversize=allow_oversize, **timm_kwargs)


def from_hub(repo_id: str, revision: str | None = None, **timm_kwargs) -> nn.Module:
    """Load a timm-compound repo ('org/name' or 'org/name@rev', or a folder as 'local-dir:PATH');
    checks files, plan and tensor shapes before timm loads anything. `timm_kwargs` go to
    `timm.create_model` (pretrained defaults to True)."""
    repo_id = str(repo_id)
    if repo_id.startswith(LOCAL_DIR):
        return from_dir(repo_id[len(LOCAL_DIR) :], **timm_kwargs)
    repo, rev = split_revision(repo_id.removeprefix(HF_HUB), revision)
    sha, _ = repo_files(repo, rev)  # one commit: what is checked is what is loaded
    return _checked_create("hf-hub", f"{repo}@{sha}", timm_kwargs)


def from_dir(folder: str | Path, **timm_kwargs) -> nn.Module:
    """Load a published folder (what `save_to_dir` or `publish --to-dir` wrote) with every check `from_hub`
    makes; `timm.create_model("local-dir:...")` makes the same ones once timm_compound is imported."""
    return _checked_create("local-dir", str(folder), timm_kwargs)


def _checked_create(source: str, model_id: str, timm_kwargs: dict[str, Any]) -> nn.Module:
    """timm.create_model through timm's own `local-dir:` / `hf-hub:` door (which `timm_source` guards), for
    a config that must be timm-compound's."""
    import timm

    if published_config(source, model_id, timm_kwargs.get("cache_dir")) is None:
        raise CompoundError(f"{model_id}: config.json has no compound_plan: not published by timm-compound")
    timm_kwargs.setdefault("pretrained", True)
    model = timm.create_model(f"{source}:{model_id}", **timm_kwargs)
    if not isinstance(getattr(model, "compound_plan", None), ScalePlan):
        raise CompoundError(
            f"{model_id}: timm did not build it with {PLAN_ENTRYPOINT}: timm_compound's check of "
            "timm's local-dir:/hf-hub: configs is not installed"
        )
    return model
