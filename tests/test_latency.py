"""Measured latency: timings of tiny models (short caps, so seconds in all), the interval, the cache,
torch threads, the runtimes, the latency fit and latency-matched experiments (with a synthetic timer
where the logic, not the clock, is under test), the commands, and bad input.

Timing on a shared machine is noisy, so the one comparison of two timings gives the slower model
8x the work and asks only for 2x the time, taking each model's fastest of two interleaved timings
(load only ever adds time)."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
import torch.nn as nn
from typer.testing import CliRunner

import timm_compound as tc
from timm_compound.cli import app
from timm_compound.cost import fit as fit_module
from timm_compound.cost import latency as latency_module
from timm_compound.cost import latency_cache, runtimes
from timm_compound.cost.latency import Latency, LatencySettings, available_cores, median_interval, time_model, time_plan
from timm_compound.errors import CompoundError, CompoundWarning

QUICK = 0.3  # seconds: the time cap of every real timing below


def convs(layers: int, channels: int = 16) -> nn.Module:
    """A few 3x3 convolutions at constant width: work grows with `layers` (the Must-hold's tiny model)."""
    parts = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU()]
    for _ in range(layers - 1):
        parts += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*parts, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10))


def settings(**given) -> LatencySettings:
    return LatencySettings.check(**{"max_seconds": QUICK, **given})


# ---------------------------------------------------------------- the interval and the timing itself


def test_the_interval_of_the_median_is_the_binomial_order_statistics():
    """n = 20: the 95% interval is the 6th and 15th smallest values, as the binomial distribution says
    (P(X <= 5) = 0.0207 for X ~ B(20, 1/2), so those ranks cover 95.9%; the next pair in would cover 88.5%)."""
    tail = sum(math.comb(20, k) for k in range(6)) / 2**20
    assert 1 - 2 * tail >= 0.95 > 1 - 2 * (tail + math.comb(20, 6) / 2**20)
    values = [float(v) for v in (7, 3, 19, 0, 12, 5, 16, 9, 1, 14, 18, 2, 11, 6, 13, 4, 17, 8, 10, 15)]
    assert median_interval(values) == (9.5, 5.0, 14.0)
    with pytest.raises(CompoundError, match="at least 6 blocks"):
        median_interval([1.0] * 5)


def test_the_interval_brackets_the_median_and_says_where_it_was_measured():
    cost = tc.measure(convs(3), resolution=32, latency=True, max_seconds=QUICK)
    timing = cost.latency
    low, high = timing.ci_ms
    assert 0 < low <= timing.median_ms <= high
    assert cost.latency_ms == timing.median_ms and cost.latency_ci == timing.ci_ms
    assert cost.throughput == pytest.approx(1000 / timing.median_ms)
    assert timing.blocks >= 6 and timing.runs >= timing.blocks and timing.resolution == 32
    assert (timing.device, timing.threads, timing.batch_size, timing.dtype, timing.runtime, timing.mode) == (
        "cpu",
        1,
        1,
        "float32",
        "eager",
        "inference",
    )
    text = timing.describe()
    for part in ("per inference on cpu (", "1 thread, batch 1, 32 px, float32, eager", f"{timing.median_ms:.4g} ms"):
        assert part in text
    assert timing.converged == (timing.spread <= 0.03)
    assert not timing.converged or "stopped by" not in text
    assert json.loads(json.dumps(cost.to_dict()))["latency"]["ci_ms"] == [low, high]


def test_a_model_with_eight_times_the_work_measures_slower():
    small, large = convs(2), convs(16)
    fastest = {"small": math.inf, "large": math.inf}
    for _ in range(2):  # interleaved: a burst of load on the machine slows whichever runs then
        for name, model in (("small", small), ("large", large)):
            timing = tc.measure(model, resolution=32, latency=True, max_seconds=QUICK).latency
            fastest[name] = min(fastest[name], timing.median_ms)
    assert fastest["large"] > 2 * fastest["small"], fastest


def test_training_throughput_times_forward_backward_and_a_step():
    model = convs(3)
    before = [p.detach().clone() for p in model.parameters()]
    cost = tc.measure(model, resolution=32, batch_size=4, latency=True, train=True, max_seconds=QUICK)
    assert cost.train_latency.mode == "train" and cost.train_latency.batch_size == 4
    assert cost.train_throughput == pytest.approx(4000 / cost.train_latency.median_ms)
    assert "per training step" in cost.train_latency.describe()
    # the caller's model is timed on a copy: its weights and mode are as they were
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())) and model.training


def test_threads_are_set_while_timing_and_restored_after(monkeypatch):
    before = torch.get_num_threads()
    seen = []
    real = latency_module._blocks

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(latency_module, "_blocks", spy)
    try:
        torch.set_num_threads(3)  # one thread is asked: two on a shared machine would time badly
        cost = tc.measure(convs(2), resolution=32, latency=True, threads=1, max_seconds=QUICK)
        assert seen == [1] and cost.latency.threads == 1
        assert torch.get_num_threads() == 3
        broken = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(7, 2))  # the shapes do not fit
        with pytest.raises(CompoundError, match="cannot time this model"):
            time_model(broken, settings(threads=1), resolution=32)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_threads_above_the_cores_are_warned_about_and_capped():
    with pytest.warns(CompoundWarning, match=f"more than this machine's {available_cores()} cores"):
        checked = LatencySettings.check(threads=available_cores() + 3)
    assert checked.threads == available_cores()


# ---------------------------------------------------------------- the cache


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(latency_cache.ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def counted(monkeypatch):
    """The real timing, counted."""
    calls = []
    real = latency_module._time_module

    def count(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(latency_module, "_time_module", count)
    return calls


def test_the_cache_returns_the_stored_timing_for_the_same_fingerprint(cache_dir, counted):
    small = tc.plan("resnet18", -3)
    first = tc.measure(small, resolution=32, latency=True, max_seconds=QUICK)
    again = tc.measure(tc.plan("resnet18", -2.99), resolution=32, latency=True, max_seconds=QUICK)  # the same network
    assert len(counted) == 1 and not first.latency.cached and again.latency.cached
    assert again.latency.median_ms == first.latency.median_ms and again.latency.ci_ms == first.latency.ci_ms
    assert again.latency.times == first.latency.times
    files = list((cache_dir / "latency").glob("*.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    assert record["fingerprint"]["model"]["depths"] == small.depths and record["fingerprint"]["threads"] == 1
    for part in ("device_name", "cores", "torch", "timm", "dtype", "runtime", "batch_size", "mode"):
        assert part in record["fingerprint"]
    # another fingerprint (batch, resolution, network) is timed; so is the same one with cache=False
    tc.measure(small, resolution=32, batch_size=2, latency=True, max_seconds=QUICK)
    tc.measure(small, resolution=40, latency=True, max_seconds=QUICK)
    tc.measure(tc.plan("resnet18", -1), resolution=32, latency=True, max_seconds=QUICK)
    tc.measure(small, resolution=32, latency=True, max_seconds=QUICK, cache=False)
    assert len(counted) == 5
    assert len(list((cache_dir / "latency").glob("*.json"))) == 4


def test_a_capped_timing_is_reused_only_under_a_cap_no_longer(cache_dir, counted):
    scaled = tc.plan("resnet18", -2)
    noisy = settings(precision=1e-9)  # never converges: the cap always stops it
    assert not time_plan(scaled, noisy, resolution=32).converged
    assert time_plan(scaled, noisy, resolution=32).cached
    assert not time_plan(scaled, LatencySettings.check(max_seconds=2 * QUICK, precision=1e-9), resolution=32).cached
    assert len(counted) == 2


def test_an_unwritable_cache_folder_times_without_caching_and_warns_once(tmp_path, monkeypatch, counted):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(latency_cache.ENV, str(blocker / "cache"))
    monkeypatch.setattr(latency_cache, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            assert not tc.measure(
                tc.plan("resnet18", -3), resolution=32, latency=True, max_seconds=QUICK
            ).latency.cached
    said = [str(w.message) for w in caught if issubclass(w.category, CompoundWarning)]
    assert len(said) == 1 and "cannot write the latency cache" in said[0] and "TIMM_COMPOUND_CACHE_DIR" in said[0]
    assert len(counted) == 2


def test_a_module_is_never_cached(cache_dir, counted):
    model = convs(2)
    for _ in range(2):
        assert not tc.measure(model, resolution=32, latency=True, max_seconds=QUICK).latency.cached
    assert len(counted) == 2 and not cache_dir.exists()


# ---------------------------------------------------------------- runtimes


def test_onnxruntime_computes_what_eager_computes(monkeypatch):
    for name in ("onnxruntime", "onnx", "onnxscript"):
        pytest.importorskip(name, reason="the [onnx] extra is not installed (pip install 'timm-compound[onnx]')")
    compared = []
    real = runtimes._check_close
    monkeypatch.setattr(runtimes, "_check_close", lambda *args: (compared.append(args[:2]), real(*args)))
    model = convs(3).eval()
    cost = tc.measure(model, resolution=32, batch_size=2, latency=True, runtime="onnxruntime", max_seconds=QUICK)
    assert cost.latency.runtime == "onnxruntime" and cost.latency.median_ms > 0
    ((expected, got),) = compared  # what eager and onnxruntime computed on the timed input, checked here again
    assert expected.shape == (2, 10) and torch.allclose(torch.as_tensor(got), expected, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        assert torch.equal(model(x), expected)
    with pytest.raises(CompoundError, match="training throughput is timed with runtime eager or compile"):
        runtimes.train_step(model, x, "onnxruntime")


def test_a_runtime_that_computes_something_else_is_not_timed():
    with pytest.raises(
        CompoundError, match=r"runtime 'compile' does not compute what eager PyTorch computes.*not timed"
    ):
        runtimes._check_close(torch.zeros(2, 10), torch.full((2, 10), 1e-3), "compile", torch.float32)
    runtimes._check_close(torch.ones(2, 10), torch.ones(2, 10) + 5e-5, "onnxruntime", torch.float32)


def test_onnxruntime_without_the_extra_says_how_to_install_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(CompoundError, match=r"needs onnxruntime: pip install 'timm-compound\[onnx\]'"):
        LatencySettings.check(runtime="onnxruntime")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "given, message",
    [
        (dict(batch_size=0), "batch_size must be a positive int"),
        (dict(batch_size=-2), "batch_size must be a positive int"),
        (dict(batch_size=float("nan")), "batch_size must be a positive int"),
        (dict(batch_size=float("inf")), "batch_size must be a positive int"),
        (dict(batch_size=True), "batch_size must be a positive int"),
        (dict(threads=0), "threads must be a positive int"),
        (dict(max_seconds=0), "max_seconds must be a finite number > 0"),
        (dict(max_seconds=float("inf")), "max_seconds must be a finite number > 0"),
        (dict(dtype="float64"), "dtype must be one of float32, float16, bfloat16"),
        (dict(runtime="tensorrt"), "runtime must be one of eager, compile, onnxruntime"),
        (dict(device="tpu"), "device must be 'cpu', 'cuda' or 'cuda:N'"),
        (dict(device=0), "device must be 'cpu', 'cuda' or 'cuda:N'"),
    ],
)
def test_bad_timing_settings_are_clear_errors(given, message):
    with pytest.raises(CompoundError, match=message):
        tc.measure("resnet18", latency=True, **given)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(CompoundError, match=r"no CUDA GPU is available here.*--device cpu"):
        tc.measure("resnet18", latency=True, device="cuda")
    with pytest.raises(CompoundError, match="no CUDA GPU"):
        tc.fit("resnet18", max_latency_ms=20, device="cuda:1")


def test_train_without_latency_and_a_meta_model_are_errors():
    with pytest.raises(CompoundError, match="pass latency=True as well"):
        tc.measure("resnet18", train=True)
    with torch.device("meta"):
        model = convs(2)
    with pytest.raises(CompoundError, match="cannot time a model on the meta device"):
        tc.measure(model, resolution=32, latency=True)


@pytest.mark.parametrize("budget", [0, -5, float("nan"), float("inf"), "20", True])
def test_bad_latency_budgets_are_clear_errors(budget):
    with pytest.raises(CompoundError, match="max_latency_ms must be"):
        tc.fit("resnet18", max_latency_ms=budget)


# ---------------------------------------------------------------- the latency fit, with a synthetic timer


class Synthetic:
    """Latency as a power of MACs, with an interval of +-`spread` (a different one for chosen networks),
    so the fit's logic is tested against an answer computed here; counts the timings."""

    def __init__(self, ms_per_gmac=10.0, power=0.9, spread=0.001, overhead=0.5, straddle=None):
        self.ms_per_gmac, self.power, self.spread, self.overhead = ms_per_gmac, power, spread, overhead
        self.straddle = straddle or (lambda ms, timings: None)  # (median, timings so far) -> spread or None
        self.calls = []

    def ms(self, scaled) -> float:
        return self.overhead + self.ms_per_gmac * tc.measure(scaled).gmacs ** self.power

    def __call__(self, scaled, settings, *, pooled_with=None, **_):
        median = self.ms(scaled)
        timings = 1 if pooled_with is None else 1 + round(pooled_with.runs / 10)
        spread = self.straddle(median, timings)
        spread = self.spread if spread is None else spread
        self.calls.append(median)
        return Latency(
            median,
            (median * (1 - spread), median * (1 + spread)),
            settings.batch_size,
            settings.device,
            "synthetic",
            settings.threads,
            settings.dtype,
            settings.runtime,
            "inference",
            scaled.resolution,
            10 * timings,
            10 * timings,
            0.1,
            spread <= 0.03,
            settings.max_seconds,
            settings.precision,
        )


@pytest.fixture
def synthetic(monkeypatch):
    timer = Synthetic()
    monkeypatch.setattr(fit_module, "time_plan", timer)
    return timer


@pytest.mark.parametrize("factor", [2, 4])
def test_the_latency_fit_finds_the_largest_phi_under_the_budget(synthetic, factor):
    base_ms = synthetic.ms(tc.plan("resnet18", 0))
    result = tc.fit("resnet18", max_latency_ms=factor * base_ms)
    (budget,) = result.budgets
    assert budget.name == "max_latency_ms" and budget.unit == "ms" and budget.target == factor * base_ms
    assert budget.achieved == result.latency.median_ms == synthetic.ms(result.plan)
    assert budget.interval == result.latency.ci_ms
    # the search ended close enough under the budget, or right under the first network timed over it
    assert budget.ratio <= 1.0
    assert budget.ratio >= 0.97 or min(phi for phi, fits in result.trace if not fits) - result.phi <= 2e-3
    assert result.sure and result.certainty.startswith("sure:")
    assert result.complexity.latency == result.latency and result.fill == "none"
    assert result.timings == len(synthetic.calls) <= 12
    saved = result.to_dict()
    assert saved["budgets"][0]["interval"] == list(result.latency.ci_ms) and saved["sure"] is True


def test_a_budget_below_the_base_fits_a_smaller_phi(synthetic):
    base_ms = synthetic.ms(tc.plan("resnet18", 0))
    result = tc.fit("resnet18", max_latency_ms=0.6 * base_ms)
    assert result.phi < 0 and result.latency.median_ms <= 0.6 * base_ms


def test_a_straddling_timing_is_timed_again_and_a_lasting_one_is_not_sure(monkeypatch):
    base_ms = Synthetic().ms(tc.plan("resnet18", 0))
    budget = 3 * base_ms
    # near the budget, the first timing straddles it; pooled timings narrow (the retimes)
    narrowing = Synthetic(straddle=lambda ms, timings: 0.2 / timings if abs(ms / budget - 1) < 0.15 else None)
    monkeypatch.setattr(fit_module, "time_plan", narrowing)
    result = tc.fit("resnet18", max_latency_ms=budget)
    assert result.timings > len(set(narrowing.calls))  # some networks were timed more than once
    assert result.latency.median_ms <= budget
    # a network whose interval never narrows enough: its median decides, and the answer says it is not sure
    lasting = Synthetic(straddle=lambda ms, timings: 0.5 if abs(ms / budget - 1) < 0.15 else None)
    monkeypatch.setattr(fit_module, "time_plan", lasting)
    result = tc.fit("resnet18", max_latency_ms=budget)
    assert result.sure is False and result.certainty.startswith("not sure:") and "straddles" in result.certainty


def test_a_timing_out_of_line_with_its_neighbour_is_taken_again_fresh(monkeypatch):
    """The network the fit should choose, timed 3x too slow the first time (the machine was busy, or the
    cache held a timing from a busier day), would end the search below it; its time per MAC disagrees
    with its neighbour's, so both are timed again, fresh, and the search finds it after all."""
    from dataclasses import replace

    timer = Synthetic()
    budget = 3 * timer.ms(tc.plan("resnet18", 0))
    monkeypatch.setattr(fit_module, "time_plan", timer)
    expected = tc.fit("resnet18", max_latency_ms=budget)
    network = (expected.plan.depths, expected.plan.widths, expected.plan.resolution)
    fresh_asked = []

    def busy(scaled, settings, *, pooled_with=None, fresh=False, **_):
        found = timer(scaled, settings, pooled_with=pooled_with)
        fresh_asked.append(fresh)
        if (scaled.depths, scaled.widths, scaled.resolution) != network or fresh or pooled_with is not None:
            return found
        return replace(found, median_ms=3 * found.median_ms, ci_ms=(2.9 * found.median_ms, 3.1 * found.median_ms))

    monkeypatch.setattr(fit_module, "time_plan", busy)
    result = tc.fit("resnet18", max_latency_ms=budget)
    assert fresh_asked.count(True) >= 2  # the pair, then every network timed after them
    assert (result.plan.depths, result.plan.widths, result.plan.resolution) == network
    assert result.latency.median_ms == expected.latency.median_ms


def test_a_latency_budget_combines_with_a_gmacs_budget(synthetic):
    base_ms = synthetic.ms(tc.plan("resnet18", 0))
    result = tc.fit("resnet18", max_latency_ms=8 * base_ms, max_gmacs=2 * 1.814073344)
    assert [b.name for b in result.budgets] == ["max_gmacs", "max_latency_ms"]
    assert all(b.ratio <= 1 for b in result.budgets) and result.budgets[0].ratio > 0.9
    assert "ruled out by max_gmacs" in result.certainty


def test_a_latency_budget_below_the_smallest_model_says_the_smallest_latency(synthetic):
    with pytest.raises(
        CompoundError,
        match=r"no resnet18 answers within 0.1 ms on cpu .*the smallest valid model "
        r"\(depths \[1, 1, 1, 1\].* takes 0.5\d* ms \(95% interval",
    ):
        tc.fit("resnet18", max_latency_ms=0.1)


# ---------------------------------------------------------------- latency-matched experiments (synthetic timer)


def test_equal_latency_finds_each_direction_within_tolerance(monkeypatch):
    from dataclasses import replace

    from timm_compound.experiment import strategies

    timer = Synthetic(ms_per_gmac=200.0, overhead=0.2)
    costing = strategies.Costing("resnet18", 10, 32, settings())
    monkeypatch.setattr(
        costing, "time", lambda scaled, earlier=None, fresh=False: timer(scaled, costing.timing, pooled_with=earlier)
    )
    origin = strategies.base_variant(costing)
    origin = replace(origin, latency=costing.time(origin.plan))
    for strategy in ("depth", "resolution"):
        variant = strategies.equal_latency(costing, strategy, 2.0, origin, tolerance=0.2)
        ratio = variant.latency.median_ms / origin.latency.median_ms
        assert abs(ratio / 2 - 1) <= 0.2 and variant.strategy == strategy and variant.budget == 2.0
        assert variant.ratio == variant.cost.macs / origin.cost.macs
    with pytest.raises(
        CompoundError,
        match=r"depth scaling of resnet18 from 32 px cannot take 2x the base's "
        r"latency within 0%: the networks either side of it time .*x \(depths",
    ):
        strategies.equal_latency(costing, "depth", 2.0, origin, tolerance=1e-4)


# ---------------------------------------------------------------- the commands

runner = CliRunner()


def flat(text: str) -> str:
    return " ".join(text.split())


def test_measure_command_prints_counts_and_with_latency_the_timing(monkeypatch):
    result = runner.invoke(app, ["measure", "resnet18"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "11,689,512" in result.output and "1.814" in result.output and "measured on" not in result.output
    # two threads asked of a one-core machine: warned and capped (two threads on a busy machine time badly)
    monkeypatch.setattr(latency_module, "available_cores", lambda: 1)
    timed = [
        "measure",
        "resnet18",
        "--phi",
        "-3",
        "--resolution",
        "32",
        "--latency",
        "--max-seconds",
        str(QUICK),
        "--threads",
        "2",
    ]
    result = runner.invoke(app, timed, terminal_width=250)
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "warning: threads=2 is more than this machine's 1 cores: timing with 1" in text
    for part in (
        "latency",
        "95% interval",
        "images/s",
        "ms per GMAC",
        "measured on",
        "cpu (",
        "1 thread",
        "batch 1, float32, eager",
    ):
        assert part in text, part
    result = runner.invoke(app, [*timed, "--json"])  # the same fingerprint: from the cache
    saved = json.loads(result.stdout)
    assert saved["latency"]["cached"] is True
    assert saved["latency"]["device"] == "cpu" and saved["latency_ms"] == saved["latency"]["median_ms"]
    assert len(saved["latency"]["ci_ms"]) == 2 and saved["throughput"] > 0


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--train"], "--train times a training step: add --latency"),
        (["--latency", "--batch-size", "0"], "batch_size must be a positive int"),
        (["--latency", "--runtime", "tvm"], "runtime must be one of eager, compile, onnxruntime"),
        (["--latency", "--max-seconds", "nan"], "max_seconds must be a finite number > 0"),
    ],
)
def test_measure_command_bad_input_is_one_error_line(arguments, message):
    result = runner.invoke(app, ["measure", "resnet18", *arguments])
    assert result.exit_code == 1 and "Traceback" not in result.output and message in flat(result.output), result.output


def test_table_command_with_latency_shows_ms_interval_throughput_and_where():
    result = runner.invoke(
        app, ["table", "resnet18", "--phi", "-4,-3", "--latency", "--max-seconds", str(QUICK)], terminal_width=300
    )
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    for column in ("ms", "95%", "img/s", "ms/G"):  # rich folds headers to the console's width
        assert column in text
    assert "timed on cpu (" in text and "1 thread, batch 1, float32, eager" in text
    result = runner.invoke(
        app, ["table", "resnet18", "--phi", "-4,-3", "--latency", "--max-seconds", str(QUICK), "--format", "json"]
    )
    rows = json.loads(result.stdout)
    for row in rows:
        assert row["latency_low_ms"] <= row["latency_ms"] <= row["latency_high_ms"]
        assert row["ms_per_gmac"] == pytest.approx(row["latency_ms"] / row["gmacs"])
        assert row["threads"] == 1 and row["latency_batch_size"] == 1 and row["device"].startswith("cpu (")
    assert all(
        "latency_ms" not in row
        for row in json.loads(  # untimed rows keep the columns they always had
            runner.invoke(app, ["table", "resnet18", "--phi", "-4", "--format", "json"]).output
        )
    )


def test_fit_command_with_a_latency_budget_below_the_smallest_model():
    result = runner.invoke(app, ["fit", "resnet18", "--max-latency-ms", "0.001", "--max-seconds", str(QUICK)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    text = flat(result.output)
    assert "no resnet18 answers within 0.001 ms on cpu (" in text and "the smallest valid model" in text
    assert "ms (95% interval" in text and "batch 1" in text
    result = runner.invoke(app, ["fit", "resnet18", "--max-latency-ms", "-3"])
    assert result.exit_code == 1 and "max_latency_ms must be > 0" in flat(result.output)


def test_fit_command_prints_the_latency_with_its_interval_and_certainty(monkeypatch):
    timer = Synthetic()
    monkeypatch.setattr(fit_module, "time_plan", timer)
    budget = 3 * timer.ms(tc.plan("resnet18", 0))
    result = runner.invoke(app, ["fit", "resnet18", "--max-latency-ms", f"{budget:.3f}"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "max_latency_ms" in text and "(95% interval" in text and "timings" in text and "sure:" in text
    result = runner.invoke(app, ["fit", "resnet18", "--max-latency-ms", f"{budget:.3f}", "--json"])
    saved = json.loads(result.stdout)
    assert saved["budgets"][0]["name"] == "max_latency_ms" and saved["latency"]["device"] == "cpu"
    assert "timed: " in result.stderr and "sure:" in result.stderr  # the notes, kept off the JSON
