"""Getting a published repo's files: one commit of a Hub repo, or a local folder; safetensors only.

Both refuse a repo or folder without `model.safetensors` (naming any pickles it holds instead)
before anything is downloaded or read, and turn the Hub client's failures into CompoundErrors.
"""

from __future__ import annotations

from pathlib import Path

from timm_compound.errors import CompoundError
from timm_compound.hub.config import CONFIG_NAME, WEIGHTS_NAME

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".tar")


def weights_refusal(files: set[str], where: str) -> CompoundError:
    """The error for a repo or folder without model.safetensors, naming the pickles it holds instead."""
    pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
    if pickles:
        return CompoundError(
            f"{where} holds only pickled weights ({', '.join(pickles)}); timm-compound loads "
            f"{WEIGHTS_NAME} only and never unpickles"
        )
    return CompoundError(f"{where} has no {WEIGHTS_NAME}")



def split_revision(repo_id: str, revision: str | None = None) -> tuple[str, str | None]:
    """'org/name@rev' -> ('org/name', 'rev'); an explicit revision wins."""
    repo, _, rev = repo_id.partition("@")
    return repo, revision or rev or None


def hub_errors() -> tuple[type[BaseException], ...]:
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
            raise weights_refusal(files, where)
        config = hf_hub_download(repo_id, CONFIG_NAME, revision=info.sha, cache_dir=cache_dir)
        weights = hf_hub_download(repo_id, WEIGHTS_NAME, revision=info.sha, cache_dir=cache_dir)
    except CompoundError:
        raise
    except hub_errors() as error:
        raise CompoundError(f"cannot load {where} from the Hub: {first_line(error)}") from None
    return info.sha, Path(config), Path(weights)


def first_line(error: Exception) -> str:
    """The first line of an error message, or its type when it has none."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__



def local_files(folder: Path) -> tuple[Path, Path]:
    """(config.json, model.safetensors) of a published folder; refuses a folder without safetensors."""
    if not folder.is_dir():
        raise CompoundError(f"{folder} is not a folder")
    files = {p.name for p in folder.iterdir()}
    if CONFIG_NAME not in files:
        raise CompoundError(f"{folder} has no {CONFIG_NAME}: not a timm model folder")
    if WEIGHTS_NAME not in files:
        raise weights_refusal(files, str(folder))
    return folder / CONFIG_NAME, folder / WEIGHTS_NAME
