"""Scaling strategies as data: compound, dWr (Dollar, Singh and Girshick 2021) and one dimension alone, by phi
or by a FLOPs factor; dimensions a rule fixes refuse the strategies that need them."""

import math

import pytest
import yaml

import timm_compound as tc
from timm_compound.experiment.strategies import direction
from timm_compound.scaling import strategies
from timm_compound.scaling.plan import plan as open_loop
from timm_compound.scaling.rulebook import RuleBook, load_rule, shipped_dir
from timm_compound.scaling.schema import Strategy
from timm_compound.scaling.verify import verify_plan


def test_exponents_share_the_growth_as_the_paper_and_pycls_do():
    """dWr gives width alpha of the growth and depth and resolution the rest equally; pycls's
    scaling_factors("d1_w8_r1", s) is d = s**(1/10), w = s**(8/10/2), r = s**(1/10/2)."""
    assert [round(e, 12) for e in strategies.exponents(Strategy(name="dWr"))] == [0.1, 0.4, 0.05]
    assert [round(e, 12) for e in strategies.exponents(Strategy(name="dWr", alpha=0.5))] == [0.25, 0.25, 0.125]
    assert strategies.exponents(Strategy(name="depth")) == (1.0, 0.0, 0.0)
    assert strategies.exponents(Strategy(name="width")) == (0.0, 0.5, 0.0)
    assert strategies.exponents(Strategy(name="resolution")) == (0.0, 0.0, 0.5)
    s = 4.0
    promised = open_loop("resnet50", flops=s, strategy="dWr").multipliers
    assert (promised.depth, promised.width, promised.resolution) == pytest.approx((s**0.1, s**0.4, s**0.05))
    assert promised.depth * promised.width**2 * promised.resolution**2 == pytest.approx(s)


@pytest.mark.parametrize("base", ["resnet50", "regnety_008"])
def test_dwr_at_four_times_the_flops_is_measured_within_five_percent(base):
    scaled = tc.plan(base, flops=4.0, strategy="dWr", alpha=0.8)
    ratio = tc.measure(scaled).macs / tc.measure(tc.plan(base, 0)).macs
    assert abs(ratio / 4 - 1) < 0.05, ratio
    mult = scaled.multipliers
    assert mult.width > mult.depth and mult.width > mult.resolution
    assert math.log(mult.width) / math.log(mult.depth) == pytest.approx(4.0)  # e_w / e_d = 0.4 / 0.1
    assert math.log(mult.depth) / math.log(mult.resolution) == pytest.approx(2.0)  # e_d / e_r = 0.1 / 0.05
    assert (scaled.strategy.name, scaled.flops) == ("dWr", 4.0)
    assert verify_plan(scaled, "test") is scaled  # a published dWr plan reproduces from its coefficients


def test_plan_by_flops_defaults_to_compound_and_single_dimensions_change_one_thing():
    base = tc.plan("resnet50", 0)
    compound = tc.plan("resnet50", flops=4.0)
    assert compound.strategy.name == "compound" and compound.coefficients == base.coefficients
    assert abs(tc.measure(compound).macs / tc.measure(base).macs / 4 - 1) < 0.05
    depth = tc.plan("resnet50", flops=2.0, strategy="depth")
    assert depth.widths == base.widths and depth.resolution == base.resolution and depth.depths != base.depths
    width = tc.plan("resnet50", flops=2.0, strategy="width")
    assert width.depths == base.depths and width.resolution == base.resolution


def test_a_rule_may_choose_dwr(tmp_path):
    data = yaml.safe_load((shipped_dir("rules") / "resnet.yaml").read_text())
    data.pop("overrides")
    data.update(family="resnet_dwr", architectures=["resnet26"], strategy={"name": "dWr", "alpha": 0.7})
    path = tmp_path / "dwr.yaml"
    path.write_text(yaml.safe_dump(data))
    book = RuleBook.alone(load_rule(path), path)
    scaled = tc.plan("resnet26", 1, rules=book)
    assert scaled.strategy == Strategy(name="dWr", alpha=0.7)
    assert (scaled.multipliers.depth, scaled.multipliers.width) == pytest.approx((2**0.15, 2**0.35))
    assert tc.plan("resnet26", 1, strategy="compound", rules=book).multipliers.depth == pytest.approx(1.2)


@pytest.mark.parametrize(
    "strategy, message",
    [
        (
            {"name": "dWr", "alpha": 1.5},
            "strategy: dWr's alpha is the share of the FLOPs growth given to width: it must "
            "lie strictly between 0 and 1, got 1.5",
        ),
        ({"name": "dWr", "alpha": 0}, "strictly between 0 and 1, got 0"),
        (
            {"name": "depth", "alpha": 0.5},
            "strategy: `alpha` is dWr's share of the growth given to width; strategy 'depth' takes none",
        ),
        ("dwr", "strategy.name: Input should be 'compound', 'dWr', 'depth', 'width' or 'resolution'"),
    ],
)
def test_a_bad_strategy_in_a_rule_names_file_and_field(tmp_path, strategy, message):
    data = yaml.safe_load((shipped_dir("rules") / "resnet.yaml").read_text())
    data["strategy"] = strategy
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(tc.RuleError) as caught:
        load_rule(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(flops=4.0, strategy="dWr", alpha=1.0), "must lie strictly between 0 and 1, got 1"),
        (dict(flops=4.0, strategy="dWr", alpha=-0.1), "must lie strictly between 0 and 1, got -0.1"),
        (dict(flops=4.0, alpha=0.5), "alpha=0.5 is dWr's share of the growth given to width: give strategy='dWr'"),
        (
            dict(flops=4.0, strategy="fast"),
            "unknown strategy 'fast': choose from compound, dWr, depth, width, resolution",
        ),
        (dict(flops=4.0, strategy="dWr", coefficients=(1.2, 1.1, 1.15)), "coefficients are the compound strategy's"),
        (dict(flops=4.0, d=2.0), "either phi or explicit d/w/r multipliers, or flops"),
        (dict(flops=-2.0), "flops must be > 0"),
        (dict(flops=4.0, resolution=320), "give flops or resolution, not both"),
    ],
)
def test_bad_strategy_arguments(kwargs, message):
    with pytest.raises(tc.CompoundError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tc.plan("resnet50", **kwargs)


def test_a_fixed_dimension_refuses_the_strategies_that_need_it_quoting_why():
    reason = "XceptionAligned takes one flat list of per-block dicts"
    for call in (
        lambda: tc.plan("xception41", d=1.5),
        lambda: tc.plan("xception41", 1, strategy="depth"),
        lambda: tc.plan("xception41", flops=2.0, strategy="dWr"),
        lambda: tc.plan("xception41", 1, coefficients=(1.2, 1.1, 1.15)),
    ):
        with pytest.raises(tc.CompoundError, match=f"scales depth, but rule .*xception.yaml fixes it: {reason}"):
            call()
    rule = tc.plan("xception41", 0).rule
    with pytest.raises(tc.CompoundError, match=f"strategy depth scales depth, but rule 'xception' fixes it: {reason}"):
        direction("depth", rule)
    assert direction("width", rule).beta == pytest.approx(math.sqrt(2))
    scaled = tc.plan("xception41", 2)  # compound with alpha = 1: depth stays, the rest grows
    assert scaled.depths == scaled.base_depths and scaled.widths != scaled.base_widths


def test_an_experiment_refuses_a_depth_only_run_on_a_fixed_depth(tmp_path):
    with pytest.raises(tc.CompoundError, match="strategy depth scales depth, but rule 'vovnet' fixes it: A second OSA"):
        tc.experiment(
            "ese_vovnet19b_dw",
            budgets=(2,),
            strategies=("depth",),
            epochs=1,
            out=tmp_path / "x",
            resolution=32,
            train_samples=16,
            val_samples=16,
            progress=False,
        )
    assert not list(tmp_path.glob("x/runs/*"))  # refused before anything trained


def test_the_strategies_page_is_true():
    """docs/strategies.md: its Python example runs and its table is what `plan` and `measure` give."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "strategies.md").read_text()
    exec(compile(re.search(r"```python\n(.*?)```", page, re.S).group(1), "strategies.md", "exec"), {})
    rows = [line.strip("|").split("|") for line in page.splitlines() if re.match(r"\| (resnet50|regnety_008) \|", line)]
    assert len(rows) == 10
    bases = {}
    for base, strategy, phi, d, w, r, depths, px, ratio in ([cell.strip() for cell in row] for row in rows):
        scaled = tc.plan(base, flops=4.0, strategy=strategy)
        bases.setdefault(base, tc.measure(tc.plan(base, 0)).macs)
        mult = scaled.multipliers
        assert (f"{scaled.phi:.3f}", f"{mult.depth:.3f}", f"{mult.width:.3f}", f"{mult.resolution:.3f}") == (
            phi,
            d,
            w,
            r,
        )
        assert (" ".join(map(str, scaled.depths)), str(scaled.resolution)) == (depths, px)
        assert f"{tc.measure(scaled).macs / bases[base]:.3f}" == ratio


def test_an_experiment_fits_dwr_to_a_budget_in_real_cost():
    from timm_compound.experiment.strategies import Costing, base_variant, equal_cost

    costing = Costing("resnet18", 10, 64)
    origin = base_variant(costing)
    variant = equal_cost(costing, "dWr", 2.0, origin, tolerance=0.05, dwr_alpha=0.8)
    assert abs(variant.ratio / 2 - 1) <= 0.05, variant.ratio
    mult = variant.plan.multipliers  # exact: resnet18's two-block stages round any d above 1 up to 1.5x
    assert variant.plan.strategy == Strategy(name="dWr", alpha=0.8) and mult.width > mult.depth > mult.resolution
    with pytest.raises(tc.CompoundError, match="strictly between 0 and 1, got 2"):
        equal_cost(costing, "dWr", 2.0, origin, tolerance=0.05, dwr_alpha=2.0)
