"""Publishing scaled models to the Hugging Face Hub (or a folder) and loading them back, safely.

A published repo is self-describing: `config.json` is timm's format plus the whole scaling plan
(top-level `compound_plan`), so a receiver builds it without the sender's rules or registry.
Weights are `model.safetensors` only: every load path of timm-compound checks the repo's files
and the tensors' shapes against the plan before timm touches them, and never unpickles.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from pydantic import ValidationError

from timm_compound import _timm_adapter
from timm_compound.compound_scaled import PLAN_ENTRYPOINT
from timm_compound.errors import CompoundError, UnknownModelError, from_validation_error
from timm_compound.plan import ScalePlan

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".tar")
# pretrained_cfg keys that locate the sender's weights: meaningless (or harmful) in a published config
_SOURCE_KEYS = ("architecture", "tag", "hf_hub_id", "hf_hub_filename", "url", "file", "state_dict", "source", "custom_load")
# kwargs that describe how a model was loaded, not what it is
_LOAD_KWARGS = (
    "pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "pretrained_model_args", "cache_dir",
    "features_only", "out_indices", "feature_cls", "device", "dtype", "compound_plan", "checkpoint_path",
)
# structural fields two plans must share to hold the same weights
_STRUCTURE = ("base", "depths", "widths", "stem", "head", "resolution", "constructor_args")


# ---------------------------------------------------------------- plans in configs


def plan_from_config(data: Any, where: str) -> ScalePlan:
    """A published plan, validated; the error names `where` and the failing field."""
    if not isinstance(data, dict):
        raise CompoundError(f"{where}: no scaling plan (expected an object, got {type(data).__name__})")
    try:
        scaled = ScalePlan.model_validate(data)
    except ValidationError as error:
        raise from_validation_error(where, error) from None
    if not _timm_adapter.is_builtin_model(scaled.base) or scaled.base not in scaled.rule.architectures:
        raise CompoundError(f"{where}: base {scaled.base!r} is not a timm architecture its rule covers")
    return scaled


def read_config(path: Path, where: str) -> tuple[dict[str, Any], ScalePlan]:
    """config.json -> (config, plan); a CompoundError if it is not a valid timm-compound config."""
    import timm

    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CompoundError(f"{where}: config.json is not readable JSON: {error}") from None
    if not isinstance(config, dict):
        raise CompoundError(f"{where}: config.json is not a JSON object")
    if "compound_plan" not in config:
        raise CompoundError(f"{where}: config.json has no compound_plan: not published by timm-compound")
    scaled = plan_from_config(config["compound_plan"], f"{where}: config.json compound_plan")
    architecture = config.get("architecture")
    model_args = config.get("model_args") or {}
    if not isinstance(model_args, dict):
        raise CompoundError(f"{where}: config.json model_args is not an object")
    if architecture == PLAN_ENTRYPOINT:
        if model_args.get("compound_plan") != config["compound_plan"]:
            raise CompoundError(f"{where}: config.json model_args.compound_plan differs from compound_plan")
    elif architecture != scaled.base:
        raise CompoundError(
            f"{where}: config.json architecture {architecture!r} is neither {PLAN_ENTRYPOINT!r} nor the plan's base {scaled.base!r}"
        )
    else:  # plain timm builds from model_args: they must describe the plan's model
        try:
            expected = structural_kwargs(scaled)
        except (TypeError, ValueError):
            raise CompoundError(f"{where}: config.json names {architecture!r}, but this plan needs the plugin "
                                f"entrypoint {PLAN_ENTRYPOINT!r}") from None
        for arg, value in expected.items():
            if model_args.get(arg) != value:
                raise CompoundError(f"{where}: config.json model_args.{arg} = {model_args.get(arg)!r} "
                                    f"contradicts compound_plan ({value!r})")
    cfg = config.get("pretrained_cfg")
    known = {f.name for f in fields(timm.models.PretrainedCfg)}
    if not isinstance(cfg, dict) or set(cfg) - known:
        unknown = sorted(set(cfg) - known) if isinstance(cfg, dict) else "not an object"
        raise CompoundError(f"{where}: config.json pretrained_cfg is invalid: unknown keys {unknown}")
    return config, scaled


def same_structure(a: ScalePlan, b: ScalePlan) -> bool:
    return all(getattr(a, key) == getattr(b, key) for key in _STRUCTURE)


# ---------------------------------------------------------------- weights checks


def _state_shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state.items()}


def safetensors_shapes(path: Path, where: str) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header, without loading the tensors."""
    from safetensors import SafetensorError, safe_open

    if Path(path).suffix != ".safetensors":
        raise CompoundError(f"{where}: {Path(path).name} is not a .safetensors file; timm-compound never unpickles weights")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise CompoundError(f"{where}: {Path(path).name} is not a valid safetensors file: {error}") from None


def check_shapes(expected: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]], where: str, what: str) -> None:
    """Raise a CompoundError naming the first differences if `got` does not hold exactly `expected`."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = [f"{key} {got[key]} != {expected[key]}" for key in expected if key in got and got[key] != expected[key]]
    if not (missing or unexpected or wrong):
        return
    parts = []
    for label, items in (("shape mismatch", wrong), ("missing", missing), ("unexpected", unexpected)):
        if items:
            more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
            parts.append(f"{label}: {', '.join(items[:5])}{more}")
    raise CompoundError(f"{where}: the tensors do not match {what}: " + "; ".join(parts))


def expected_shapes(scaled: ScalePlan, model_args: dict[str, Any] | None = None) -> dict[str, tuple[int, ...]]:
    """The state_dict shapes the plan's model has, built on the meta device (no memory, no init cost)."""
    from timm_compound.build import build

    owned = scaled.rule.structural_args() | set(scaled.constructor_args) | set(_LOAD_KWARGS)
    kwargs = {k: v for k, v in (model_args or {}).items() if k not in owned}
    with torch.device("meta"):
        model = build(scaled, **kwargs)
    return _state_shapes(model.state_dict())


def _describe(scaled: ScalePlan, num_classes: Any) -> str:
    phi = f"phi={scaled.phi:g}" if scaled.phi is not None else f"d={scaled.multipliers.depth:g}, w={scaled.multipliers.width:g}"
    return f"the plan's model ({scaled.base}, {phi}, num_classes={num_classes})"


def check_weights(scaled: ScalePlan, path: Path, model_args: dict[str, Any], where: str) -> None:
    check_shapes(
        expected_shapes(scaled, model_args), safetensors_shapes(path, where), where,
        _describe(scaled, model_args.get("num_classes")),
    )


def _weights_refusal(files: set[str], where: str) -> CompoundError:
    pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
    if pickles:
        return CompoundError(
            f"{where} holds only pickled weights ({', '.join(pickles)}); timm-compound loads "
            f"{WEIGHTS_NAME} only and never unpickles"
        )
    return CompoundError(f"{where} has no {WEIGHTS_NAME}")


# ---------------------------------------------------------------- fetching


def split_revision(repo_id: str, revision: str | None = None) -> tuple[str, str | None]:
    """'org/name@rev' -> ('org/name', 'rev'); an explicit revision wins."""
    repo, _, rev = repo_id.partition("@")
    return repo, revision or rev or None


def _hub_errors() -> tuple[type[BaseException], ...]:
    """What the Hub client raises for HTTP, transport (unreachable endpoint) and offline failures,
    whichever HTTP library this huggingface_hub uses."""
    from huggingface_hub.errors import HfHubHTTPError

    errors: list[type[BaseException]] = [HfHubHTTPError, OSError, ValueError]
    for module, name in (("httpx2", "HTTPError"), ("httpx", "HTTPError"), ("requests", "RequestException")):
        try:
            errors.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def fetch(repo_id: str, revision: str | None = None, cache_dir: str | Path | None = None) -> tuple[str, Path, Path]:
    """(commit sha, config.json, model.safetensors) of one commit; refuses repos without safetensors."""
    from huggingface_hub import HfApi, hf_hub_download

    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        info = HfApi().model_info(repo_id, revision=revision)
        files = {sibling.rfilename for sibling in info.siblings or []}
        if CONFIG_NAME not in files:
            raise CompoundError(f"{where} has no {CONFIG_NAME}: not a timm model repo")
        if WEIGHTS_NAME not in files:
            raise _weights_refusal(files, where)
        config = hf_hub_download(repo_id, CONFIG_NAME, revision=info.sha, cache_dir=cache_dir)
        weights = hf_hub_download(repo_id, WEIGHTS_NAME, revision=info.sha, cache_dir=cache_dir)
    except CompoundError:
        raise
    except _hub_errors() as error:
        raise CompoundError(f"cannot load {where} from the Hub: {_first_line(error)}") from None
    return info.sha, Path(config), Path(weights)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _local(folder: Path) -> tuple[Path, Path]:
    if not folder.is_dir():
        raise CompoundError(f"{folder} is not a folder")
    files = {p.name for p in folder.iterdir()}
    if CONFIG_NAME not in files:
        raise CompoundError(f"{folder} has no {CONFIG_NAME}: not a timm model folder")
    if WEIGHTS_NAME not in files:
        raise _weights_refusal(files, str(folder))
    return folder / CONFIG_NAME, folder / WEIGHTS_NAME


def safe_pretrained_cfg(scaled: ScalePlan, cfg: Any, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """The pretrained_cfg timm should load from: the same cfg, its weights checked and pointed at a local
    .safetensors file, so timm never falls back to a pickle. Used by `build(pretrained=True)`.
    """
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    source = cfg.get("source") or ""
    if cfg.get("state_dict") is not None:
        return cfg  # an in-memory state dict: nothing to fetch or unpickle
    if source == "local-dir":
        where = str(cfg.get("file"))
        config_path, weights = _local(Path(cfg.get("file") or ""))
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


# ---------------------------------------------------------------- what a repo holds


def structural_kwargs(scaled: ScalePlan) -> dict[str, Any]:
    """The plan's structural constructor kwargs for its base entrypoint, as JSON data
    (TypeError/ValueError where they are not JSON, e.g. block_args)."""
    from timm_compound import structure

    call = _timm_adapter.capture(scaled.base)
    structure.write(scaled.rule, call, scaled.depths, scaled.widths, scaled.stem, scaled.head)
    args = {arg: call.kwargs[arg] for arg in sorted(scaled.rule.structural_args()) if arg in call.kwargs}
    return json.loads(json.dumps(args))


def plain_timm_args(scaled: ScalePlan, num_classes: int) -> dict[str, Any] | None:
    """Constructor kwargs with which plain timm (no plugin) builds the plan's model from `scaled.base`,
    or None when the structure is not expressible as JSON kwargs of the base entrypoint.

    Decided by trying: the candidate kwargs must survive JSON and give the same state_dict shapes.
    """
    import timm

    try:
        args = {**structural_kwargs(scaled), **json.loads(json.dumps(scaled.constructor_args))}
        with torch.device("meta"):
            plain = timm.create_model(scaled.base, num_classes=num_classes, **args)
        if _state_shapes(plain.state_dict()) != expected_shapes(scaled, {"num_classes": num_classes}):
            return None
    except Exception:  # noqa: BLE001 - any failure means plain timm cannot build it this way
        return None
    return args


def _json_kwargs(model: nn.Module, scaled: ScalePlan) -> dict[str, Any]:
    """Kwargs the model was created with (timm records them) that a loader needs, JSON-safe only."""
    owned = scaled.rule.structural_args() | set(scaled.constructor_args) | set(_LOAD_KWARGS)
    kept = {}
    for key, value in _timm_adapter.model_args(model).items():
        if key in owned:
            continue
        try:
            kept[key] = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            continue
    return kept


def _export_cfg(model: nn.Module) -> dict[str, Any]:
    cfg = {k: v for k, v in dict(model.pretrained_cfg).items() if v is not None and k not in _SOURCE_KEYS}
    cfg["num_classes"] = model.num_classes
    return json.loads(json.dumps(cfg))


def hub_config(model: nn.Module, scaled: ScalePlan, name: str | None) -> dict[str, Any]:
    """config.json: timm's format (architecture, num_classes, num_features, model_args, pretrained_cfg)
    plus the whole plan and the versions that made it as top-level keys."""
    import timm

    from timm_compound import __version__

    kwargs = {**_json_kwargs(model, scaled), "num_classes": model.num_classes}
    plain = plain_timm_args(scaled, model.num_classes)
    if plain is not None:
        architecture, model_args = scaled.base, {**plain, **kwargs}
    else:
        architecture, model_args = PLAN_ENTRYPOINT, {"compound_plan": scaled.to_dict(), **kwargs}
    config = {
        "architecture": architecture,
        "num_classes": model.num_classes,
        "num_features": getattr(model, "num_features", None),
        "model_args": model_args,
        "pretrained_cfg": _export_cfg(model),
        "compound_plan": scaled.to_dict(),
        "timm_compound": {
            "version": __version__,
            "timm_version": timm.__version__,
            "torch_version": torch.__version__.split("+")[0],
            "name": name,
            "plain_timm_loadable": plain is not None,
        },
    }
    return config


# ---------------------------------------------------------------- publishing


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


def resolve(model_or_name: Any, weights: str | Path | None = None) -> tuple[nn.Module, ScalePlan, str | None, dict[str, torch.Tensor]]:
    """(model, plan, name, state dict to publish) for a model, a registered name or a plan."""
    import timm

    from timm_compound.build import build, pretrained_cfg
    from timm_compound.registry import registered

    tensors = _read_weights(weights) if weights is not None else None
    if isinstance(model_or_name, nn.Module):
        model = model_or_name
        scaled = getattr(model, "compound_plan", None)
        if not isinstance(scaled, ScalePlan):
            raise CompoundError("the model was not built by timm-compound (it has no compound_plan)")
        name = (getattr(model, "pretrained_cfg", None) or {}).get("architecture")
    elif isinstance(model_or_name, ScalePlan):
        scaled, name = model_or_name, None
        model = build(scaled, **_classes_from(tensors, pretrained_cfg(scaled).get("classifier")))
    elif isinstance(model_or_name, str):
        variant = registered().get(model_or_name)
        if variant is None:
            raise UnknownModelError(f"{model_or_name!r} is not a registered variant; pass a model or a plan")
        name = model_or_name
        classifier = timm.models.get_pretrained_cfg(name).classifier
        model = timm.create_model(name, **_classes_from(tensors, classifier))
        scaled = model.compound_plan
    else:
        raise CompoundError(f"cannot publish {type(model_or_name).__name__}: give a model, a registered name or a plan")
    if not hasattr(model, "num_classes") or not hasattr(model, "pretrained_cfg"):
        raise CompoundError("only classification models can be published (not features_only wrappers)")
    state = model.state_dict()
    if any(t.is_meta for t in state.values()):
        raise CompoundError("the model is on the meta device: it has no weights to publish")
    if tensors is not None:
        check_shapes(_state_shapes(state), _state_shapes(tensors), str(weights), _describe(scaled, model.num_classes))
        state = tensors
    return model, scaled, name, state


def save_to_dir(
    model_or_name: Any,
    directory: str | Path,
    *,
    weights: str | Path | None = None,
    repo_id: str | None = None,
) -> Path:
    """Write model.safetensors, config.json and README.md to `directory` (loadable with `local-dir:`).

    `repo_id` only changes the card's usage snippet (hf-hub:<repo_id> instead of local-dir:<path>).
    """
    import safetensors.torch

    from timm_compound import model_card

    model, scaled, name, state = resolve(model_or_name, weights)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = hub_config(model, scaled, name)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    safetensors.torch.save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    source = f"hf-hub:{repo_id}" if repo_id else f"local-dir:{directory.resolve()}"
    card = model_card.render(config, scaled, source, model)
    (directory / CARD_NAME).write_text(card, encoding="utf-8")
    return directory


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
) -> str:
    """Publish to the Hub in one commit (a failed upload leaves the repo as it was); returns the commit sha."""
    from huggingface_hub import CommitOperationAdd, HfApi

    with tempfile.TemporaryDirectory(prefix="timm-compound-publish-") as tmp:
        folder = save_to_dir(model_or_name, tmp, weights=weights, repo_id=repo_id)
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
        except (*_hub_errors(), RuntimeError) as error:
            raise CompoundError(f"publishing to {repo_id} failed, nothing was committed: {_first_line(error)}") from None
    return info.oid


def _short(plan_json: dict[str, Any]) -> str:
    if plan_json.get("phi") is not None:
        return f"phi={plan_json['phi']:g}"
    mult = plan_json["multipliers"]
    return f"d={mult['depth']:g} w={mult['width']:g} r={mult['resolution']:g}"


# ---------------------------------------------------------------- loading


def from_hub(repo_id: str, revision: str | None = None, **timm_kwargs) -> nn.Module:
    """Load a timm-compound repo ('org/name' or 'org/name@rev'); checks files, plan and tensor shapes
    before timm loads anything. `timm_kwargs` go to `timm.create_model` (pretrained defaults to True)."""
    import timm

    repo, rev = split_revision(repo_id, revision)
    sha, config_path, weights = fetch(repo, rev, timm_kwargs.get("cache_dir"))
    where = f"{repo}@{sha}"
    config, scaled = read_config(config_path, where)
    timm_kwargs.setdefault("pretrained", True)
    if timm_kwargs["pretrained"]:
        check_weights(scaled, weights, {**(config.get("model_args") or {}), "num_classes": config.get("num_classes")}, where)
    model = timm.create_model(f"hf-hub:{repo}@{sha}", **timm_kwargs)
    if not isinstance(getattr(model, "compound_plan", None), ScalePlan):
        model.compound_plan = scaled
    return model
