"""How a timed model is run: eager PyTorch, ``torch.compile``, or onnxruntime (the optional extra
``timm-compound[onnx]``: the model exported by torch's ONNX exporter).

A runtime other than eager is checked against eager PyTorch on the timed input before it is timed
(float32 outputs within 1e-4), so a faster number is never one of a different function.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from timm_compound.errors import CompoundError

RUNTIMES = ("eager", "compile", "onnxruntime")
TOLERANCE = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 5e-2}
ONNX_EXTRA = "pip install 'timm-compound[onnx]' (onnx, onnxscript, onnxruntime)"


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads set to `threads` inside (None: left as they are), given back after."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check(runtime: Any, device: str, dtype: str) -> None:
    """A clear error for a runtime that is unknown, not installed, or cannot run these settings."""
    if runtime not in RUNTIMES:
        raise CompoundError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if runtime != "onnxruntime":
        return
    missing = [name for name in ("onnxruntime", "onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise CompoundError(f"runtime 'onnxruntime' needs {', '.join(missing)}: {ONNX_EXTRA}")
    if dtype != "float32":
        raise CompoundError(f"runtime 'onnxruntime' times float32 models only, got dtype {dtype!r}")
    if device.startswith("cuda"):
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise CompoundError(
                "runtime 'onnxruntime' on a GPU needs onnxruntime-gpu (this onnxruntime offers "
                f"{', '.join(onnxruntime.get_available_providers())})"
            )


def onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def inference_step(model: nn.Module, x: torch.Tensor, runtime: str, threads: int) -> Callable[[], Any]:
    """A call that runs one forward pass of `model` on `x` (no gradients), checked against eager first."""
    model.eval()
    if runtime == "eager":
        return lambda: model(x)
    with torch.no_grad():
        expected = model(x)
    if runtime == "compile":
        compiled = torch.compile(model)

        def step():
            return compiled(x)

        with torch.no_grad():
            got = step()
    else:
        step, got = _onnxruntime_step(model, x, threads)
    _check_close(expected, got, runtime, x.dtype)
    return step


def train_step(model: nn.Module, x: torch.Tensor, runtime: str) -> Callable[[], Any]:
    """A call that takes one training step: forward, cross-entropy on fixed labels, backward, SGD with momentum."""
    if runtime == "onnxruntime":
        raise CompoundError("training throughput is timed with runtime eager or compile, not onnxruntime")
    model.train()
    forward = torch.compile(model) if runtime == "compile" else model
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    with torch.no_grad():
        classes = model(x).shape[-1]
    labels = torch.arange(x.shape[0], device=x.device) % classes
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward(x).float(), labels)
        loss.backward()
        optimizer.step()
        return loss

    return step


def _onnxruntime_step(model: nn.Module, x: torch.Tensor, threads: int) -> tuple[Callable[[], Any], Any]:
    import onnxruntime

    folder = tempfile.TemporaryDirectory(prefix="timm-compound-onnx-")
    path = Path(folder.name) / "model.onnx"
    try:
        with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():  # the exporter reports its steps on stdout
            torch.onnx.export(model, (x,), str(path), dynamo=True, verbose=False)
    except Exception as error:
        folder.cleanup()
        raise CompoundError(f"torch's ONNX exporter cannot export this model: {str(error).splitlines()[0]}") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    providers = ["CUDAExecutionProvider"] if x.device.type == "cuda" else ["CPUExecutionProvider"]
    session = onnxruntime.InferenceSession(str(path), options, providers=providers)
    folder.cleanup()  # the session holds the model: the files are no longer needed
    feed = {session.get_inputs()[0].name: x.detach().cpu().numpy()}

    def step():
        return session.run(None, feed)

    return step, torch.from_numpy(step()[0])


def _check_close(expected: Any, got: Any, runtime: str, dtype: torch.dtype) -> None:
    expected = expected[0] if isinstance(expected, (tuple, list)) else expected
    got = got[0] if isinstance(got, (tuple, list)) else got
    expected, got = expected.detach().float().cpu(), torch.as_tensor(got).detach().float().cpu()
    tolerance = TOLERANCE[dtype]
    if expected.shape != got.shape or not torch.allclose(got, expected, rtol=tolerance, atol=tolerance):
        worst = (got - expected).abs().max().item() if expected.shape == got.shape else float("nan")
        raise CompoundError(
            f"runtime {runtime!r} does not compute what eager PyTorch computes on this model "
            f"(largest difference {worst:.3g}, allowed {tolerance:g}): not timed"
        )
