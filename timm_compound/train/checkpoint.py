"""Checkpoints of a run folder: weights as safetensors, the rest of the training state with torch.save.

`last/` holds the state after the last completed epoch: `model.safetensors` (and `ema.safetensors`),
`state.pt` (optimizer, scheduler, grad scaler, every RNG, the metrics so far), read back only with
`torch.load(weights_only=True)`. It is written whole to `last.tmp/` and swapped in by renames, so a
kill at any moment leaves a complete `last/` (or the previous one in `last.old/`, which resume uses).
`best.safetensors` holds the evaluated weights of the epoch with the highest top-1.

A finished run that will not be continued can be thinned (`thin`): its training state goes, its
final weights stay (last/model.safetensors, ema.safetensors), and `train` then refuses to resume it
rather than start it again from nothing; `weights_only=False` keeps the metrics alone.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from timm_compound.errors import CompoundError, without_unsafe_advice

LAST, BEST = "last", "best.safetensors"
MODEL, EMA, STATE = "model.safetensors", "ema.safetensors", "state.pt"


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) RNG states as tensors and plain data (loadable with weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    saved = state["numpy"]
    np.random.set_state(
        (saved["kind"], saved["keys"].numpy().astype(np.uint32), saved["pos"], saved["has_gauss"], saved["cached"])
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().to("cpu").contiguous().clone() for key, value in state.items()}


def save_weights(state: dict[str, torch.Tensor], path: Path) -> None:
    """A state dict to `path` as safetensors, atomically (written beside it, then renamed)."""
    import safetensors.torch

    partial = path.with_name(path.name + ".partial")
    safetensors.torch.save_file(_tensors(state), str(partial), metadata={"format": "pt"})
    os.replace(partial, path)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    import safetensors.torch

    if path.suffix != ".safetensors":
        raise CompoundError(f"{path}: weights must be a .safetensors file; timm-compound never unpickles weights")
    if not path.is_file():
        raise CompoundError(f"{path}: no such weights file")
    try:
        return safetensors.torch.load_file(str(path), device="cpu")
    except Exception as error:
        raise CompoundError(f"{path}: not a valid safetensors file: {error}") from None


def save_last(run_dir: Path, model_state: dict, ema_state: dict | None, state: dict[str, Any]) -> None:
    """Write the end-of-epoch checkpoint to last.tmp/, then swap it in for last/."""
    last, partial, old = run_dir / LAST, run_dir / f"{LAST}.tmp", run_dir / f"{LAST}.old"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    save_weights(model_state, partial / MODEL)
    if ema_state is not None:
        save_weights(ema_state, partial / EMA)
    torch.save(state, partial / STATE)
    if last.exists():
        shutil.rmtree(old, ignore_errors=True)
        last.rename(old)
    partial.rename(last)
    shutil.rmtree(old, ignore_errors=True)


def thin(run_dir: Path, *, weights: bool = True, final_is_best: bool = False) -> int:
    """Delete what only a resume needs (optimizer, scheduler, scaler and RNG state: last/state.pt, and
    any last.old/ or last.tmp/). `final_is_best`: the last epoch was the best one, so best.safetensors
    holds the final evaluated weights and last/ goes whole. `weights=False`: every checkpoint and
    weights file goes, so that only the metrics remain. Returns the bytes freed."""
    run_dir = Path(run_dir)
    doomed = [run_dir / f"{LAST}.tmp", run_dir / f"{LAST}.old"]
    if not weights:
        doomed += [run_dir / LAST, run_dir / BEST]
    else:
        doomed += [run_dir / LAST] if final_is_best and (run_dir / BEST).is_file() else [run_dir / LAST / STATE]
    freed = 0
    for path in doomed:
        if path.is_dir():
            freed += sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file():
            freed += path.stat().st_size
            path.unlink(missing_ok=True)
    return freed


def find_last(run_dir: Path) -> Path | None:
    """The newest complete checkpoint folder, or None when no epoch has completed."""
    for name in (LAST, f"{LAST}.old"):
        folder = run_dir / name
        if (folder / STATE).is_file() and (folder / MODEL).is_file():
            return folder
    return None


def load_last(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None, dict[str, Any]]:
    """(model weights, EMA weights or None, training state) from a checkpoint folder; no unpickling."""
    try:
        state = torch.load(folder / STATE, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CompoundError(
            f"{folder / STATE}: cannot read the training state: {without_unsafe_advice(str(error))}"
        ) from None
    ema = load_weights(folder / EMA) if (folder / EMA).is_file() else None
    return load_weights(folder / MODEL), ema, state
