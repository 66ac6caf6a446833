"""Timings kept between runs, keyed by a fingerprint of the device and the model, so a table of 30
variants is timed once per machine.

The folder is TIMM_COMPOUND_CACHE_DIR when set, else the user's cache folder (platformdirs' when
installed, else $XDG_CACHE_HOME or ~/.cache), then ``timm-compound/latency/``. One JSON file per
fingerprint, named by its SHA-256 and holding the fingerprint itself (a file whose fingerprint does
not match is ignored). A folder that cannot be written is warned about once; timing goes on without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from timm_compound.errors import CompoundWarning

ENV = "TIMM_COMPOUND_CACHE_DIR"
FORMAT = 1
_warned: set[str] = set()


def folder() -> Path:
    """Where timings are kept (created on first write)."""
    given = os.environ.get(ENV)
    if given:
        return Path(given).expanduser() / "latency"
    try:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("timm-compound"))
    except ImportError:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(base) / "timm-compound"
    return root / "latency"


def key(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps({"format": FORMAT, **fingerprint}, sort_keys=True, default=str).encode("utf-8")
    ).hexdigest()


def _canonical(fingerprint: dict[str, Any]) -> Any:
    return json.loads(json.dumps(fingerprint, sort_keys=True, default=str))


def load(fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The stored record for this fingerprint, or None (none stored, unreadable, or another fingerprint)."""
    path = folder() / f"{key(fingerprint)}.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != _canonical(fingerprint):
        return None
    return record


def store(fingerprint: dict[str, Any], record: dict[str, Any]) -> Path | None:
    """Write the record (atomically); None, with one warning per folder, where the folder cannot be written."""
    where = folder()
    path = where / f"{key(fingerprint)}.json"
    partial = path.with_suffix(f".{os.getpid()}.partial")
    try:
        where.mkdir(parents=True, exist_ok=True)
        partial.write_text(
            json.dumps({"format": FORMAT, "fingerprint": _canonical(fingerprint), **record}), encoding="utf-8"
        )
        partial.replace(path)
    except OSError as error:
        if str(where) not in _warned:
            _warned.add(str(where))
            warnings.warn(
                f"cannot write the latency cache {where} ({error.strerror or error}): timing without "
                f"caching (set {ENV} to a writable folder)",
                CompoundWarning,
                stacklevel=4,
            )
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass
        return None
    return path
