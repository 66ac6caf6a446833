"""Getting a published repo's files: one commit of a Hub repo, or a local folder; safetensors only.

Both refuse a repo or folder without `model.safetensors` (naming any pickles it holds instead)
before anything is downloaded or read, and turn the Hub client's failures into CompoundErrors.
Names from outside are checked first: a Hub repo id must be `org/name`, a revision must follow
git's ref-name rules (no `..`), and a folder's `config.json` and `model.safetensors` must be
regular files (a folder, a device or a dangling link in their place is refused, naming it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from timm_compound.errors import CompoundError
from timm_compound.hub.config import CONFIG_NAME, WEIGHTS_NAME

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".tar")
# the Hub's rule for repo ids: [org/]name of letters, digits, '-', '_', '.', at most 96 characters
_REPO_ID = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9_.-]*/)?[A-Za-z0-9][A-Za-z0-9_.-]*")
# characters git refuses in a ref name (git check-ref-format), beside ASCII control characters
_REF_FORBIDDEN = set(" ~^:?*[\\")


def weights_refusal(files: set[str], where: str) -> CompoundError:
    """The error for a repo or folder without model.safetensors, naming the pickles it holds instead."""
    pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
    if pickles:
        return CompoundError(
            f"{where} holds only pickled weights ({', '.join(pickles)}); timm-compound loads "
            f"{WEIGHTS_NAME} only and never unpickles"
        )
    return CompoundError(f"{where} has no {WEIGHTS_NAME}")


def check_repo_id(repo_id: Any) -> str:
    """`repo_id` if it is a Hub repo id (org/name); a CompoundError otherwise (`..`, `--`, a path)."""
    if (
        not isinstance(repo_id, str)
        or len(repo_id) > 96
        or not _REPO_ID.fullmatch(repo_id)
        or ".." in repo_id
        or "--" in repo_id
        or repo_id.endswith(".git")
    ):
        raise CompoundError(
            f"{repo_id!r} is not a Hub repo id: expected org/name (letters, digits, '-', '_' and '.'; "
            "no '..' or '--'); a local folder is local-dir:PATH"
        )
    return repo_id


def check_revision(revision: Any) -> str:
    """`revision` if git accepts it as a branch, tag or commit name (git check-ref-format's rules);
    a CompoundError naming the rule it breaks otherwise."""
    if not isinstance(revision, str) or not revision:
        raise CompoundError(f"revision {revision!r} is not a branch, tag or commit name")
    problem = None
    if ".." in revision:
        problem = "contains '..'"
    elif "@{" in revision or revision == "@":
        problem = "contains '@{' or is '@'"
    elif any(ord(c) < 0x20 or ord(c) == 0x7F or c in _REF_FORBIDDEN for c in revision):
        problem = "contains a space, a control character or one of ~ ^ : ? * [ \\"
    elif revision.startswith("/") or revision.endswith(("/", ".")) or "//" in revision:
        problem = "starts or ends with '/', ends with '.' or contains '//'"
    elif any(part.startswith(".") or part.endswith(".lock") for part in revision.split("/")):
        problem = "has a part that starts with '.' or ends with '.lock'"
    if problem:
        raise CompoundError(
            f"revision {revision!r} is not a valid branch, tag or commit name: it {problem} (git's ref-name rules)"
        )
    return revision


def split_revision(repo_id: str, revision: str | None = None) -> tuple[str, str | None]:
    """'org/name@rev' -> ('org/name', 'rev'), both checked; an explicit revision wins."""
    repo, _, rev = str(repo_id).partition("@")
    rev = revision or rev or None
    return check_repo_id(repo), None if rev is None else check_revision(rev)


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


def repo_files(repo_id: str, revision: str | None = None) -> tuple[str, set[str]]:
    """(commit sha, file names) of one commit of a Hub repo; refuses a repo without config.json."""
    from huggingface_hub import HfApi

    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        info = HfApi().model_info(repo_id, revision=revision)
    except hub_errors() as error:
        raise CompoundError(f"cannot load {where} from the Hub: {first_line(error)}") from None
    files = {sibling.rfilename for sibling in info.siblings or []}
    if CONFIG_NAME not in files:
        raise CompoundError(f"{where} has no {CONFIG_NAME}: not a timm model repo")
    return info.sha, files


def download(repo_id: str, filename: str, sha: str, cache_dir: str | Path | None = None) -> Path:
    """One file of one commit, through the Hub client's cache."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, filename, revision=sha, cache_dir=cache_dir))
    except hub_errors() as error:
        raise CompoundError(f"cannot load {repo_id}@{sha} from the Hub: {first_line(error)}") from None


def fetch(repo_id: str, revision: str | None = None, cache_dir: str | Path | None = None) -> tuple[str, Path, Path]:
    """(commit sha, config.json, model.safetensors) of one commit; refuses repos without safetensors."""
    repo_id, revision = split_revision(repo_id, revision)
    sha, files = repo_files(repo_id, revision)
    if WEIGHTS_NAME not in files:
        raise weights_refusal(files, f"{repo_id}@{revision}" if revision else repo_id)
    return sha, download(repo_id, CONFIG_NAME, sha, cache_dir), download(repo_id, WEIGHTS_NAME, sha, cache_dir)


def first_line(error: Exception) -> str:
    """The first line of an error message, or its type when it has none."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def regular_file(path: Path, where: str) -> Path:
    """`path` if it is a regular file (a link to one is followed); a CompoundError naming what it is
    instead: a folder, a device or pipe, a link to nowhere."""
    link = f" (a link to {path.resolve()})" if path.is_symlink() else ""
    if not path.exists():
        raise CompoundError(f"{where}: {path.name}{link} does not exist")
    if path.is_dir():
        raise CompoundError(f"{where}: {path.name}{link} is a folder, not a file")
    if not path.is_file():
        raise CompoundError(f"{where}: {path.name}{link} is not a regular file (a device, pipe or socket)")
    return path


def local_files(folder: Path) -> tuple[Path, Path]:
    """(config.json, model.safetensors) of a published folder; refuses a folder without safetensors."""
    config = local_config(folder)
    files = _listing(folder)
    if WEIGHTS_NAME not in files:
        raise weights_refusal(files, str(folder))
    return config, regular_file(folder / WEIGHTS_NAME, str(folder))


def local_config(folder: Path) -> Path:
    """A published folder's config.json (a regular file); the error names the folder as given and as resolved."""
    folder = Path(folder)
    shown = str(folder) if folder.is_absolute() else f"{folder} (= {folder.resolve()})"
    if not folder.exists():
        raise CompoundError(f"{shown}: no such folder")
    if not folder.is_dir():
        raise CompoundError(f"{shown} is not a folder")
    if CONFIG_NAME not in _listing(folder):
        raise CompoundError(f"{shown} has no {CONFIG_NAME}: not a timm model folder")
    return regular_file(folder / CONFIG_NAME, str(folder))


def _listing(folder: Path) -> set[str]:
    try:
        return {p.name for p in folder.iterdir()}
    except OSError as error:
        raise CompoundError(f"{folder}: cannot list the folder: {error.strerror or error}") from None
