"""The registered variants as rows (name, base, phi, input size, weights), remembered between runs.

`timm-compound list` only shows what registration computes, but registration needs timm (each base's
input size is in timm's pretrained_cfg), and importing timm and torch is most of the command's start-up
(about 6 of its 6.5 CPU seconds). The rows are a pure function of the inputs below, so the first run
computes them by registering and stores them under a fingerprint of those inputs; a later run whose
inputs are unchanged reads them back without importing torch:

- the versions of timm-compound and timm (read from the installed metadata, not imported);
- the size and modification time of every timm-compound source file;
- the bytes of the shipped rule and registry files, and of every YAML file TIMM_COMPOUND_RULES_PATH names.

Anything unusual (a path that cannot be read, an unreadable or malformed cache file) means no cache: the
variants are registered as usual, so every error a registration reports is reported as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from timm_compound.scaling.rulebook import shipped_dir
from timm_compound.version import __version__

_FIELDS = ("name", "base", "phi", "input_size", "weights")
ENV_VAR = "TIMM_COMPOUND_RULES_PATH"  # timm_compound.registry.user_rules.ENV_VAR (importing it would import torch)


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/timm-compound (default ~/.cache/timm-compound)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "timm-compound"


def _yaml_under(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
    if path.is_file():
        return [path]
    raise FileNotFoundError(path)


def fingerprint() -> str | None:
    """A digest of everything the rows depend on, or None when one of them cannot be read."""
    digest = hashlib.sha256()
    try:
        digest.update(f"{__version__}\0{metadata.version('timm')}\0{metadata.version('torch')}\0".encode())
        package = Path(__file__).resolve().parents[1]  # the timm_compound package
        for source in sorted(package.rglob("*.py")):
            stat = source.stat()
            digest.update(f"{source.relative_to(package)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        files = [*_yaml_under(shipped_dir("rules")), *_yaml_under(shipped_dir("registry"))]
        for entry in os.environ.get(ENV_VAR, "").split(os.pathsep):
            if entry.strip():
                digest.update(f"{ENV_VAR}\0{Path(entry).resolve()}\0".encode())
                files += _yaml_under(Path(entry))
        for file in files:
            digest.update(f"{file.resolve()}\0".encode() + file.read_bytes() + b"\0")
    except (OSError, metadata.PackageNotFoundError):
        return None
    return digest.hexdigest()[:32]


def _cached(key: str) -> list[dict[str, Any]] | None:
    try:
        rows = json.loads((cache_dir() / f"variants-{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rows, list) or not all(isinstance(row, dict) and set(row) == set(_FIELDS) for row in rows):
        return None
    return rows


def _store(key: str, rows: list[dict[str, Any]]) -> None:
    """Write the rows beside, then rename: a reader never sees half a file. A cache that cannot be
    written (a read-only home) is simply not kept."""
    try:
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".partial", delete=False, encoding="utf-8") as handle:
            json.dump(rows, handle)
        os.replace(handle.name, folder / f"variants-{key}.json")
    except OSError:
        pass


def variant_rows() -> list[dict[str, Any]]:
    """name, base, phi, input_size and weights (Hub repo or None) of every registered variant, in
    registration order: from the cache when its inputs are unchanged, else by registering (which reports
    a bad user rule file as usual)."""
    key = fingerprint()
    if key is not None:
        rows = _cached(key)
        if rows is not None:
            return rows
    import timm

    from timm_compound.registry.startup import ensure_registered
    from timm_compound.scaling.catalog import registered

    ensure_registered()
    rows = [
        {
            "name": v.name,
            "base": v.base,
            "phi": v.phi,
            "input_size": int(timm.models.get_pretrained_cfg(v.name).input_size[-1]),
            "weights": v.hf_hub_id,
        }
        for v in registered().values()
    ]
    if key is not None:
        _store(key, rows)
    return rows
