"""fit(): the largest phi whose realised (rounded) model meets the budget, close to the budget."""

import pytest

from timm_compound.cost.fit import fit
from timm_compound.cost.measure import measure
from timm_compound.errors import CompoundError, RuleError, UnknownModelError
from timm_compound.scaling.plan import plan

RESNET18_GMACS = 1.814073344  # measure("resnet18").gmacs
RESNET18_MPARAMS = 11.689512
EFFICIENTNET_B0_GMACS = 0.385814752


@pytest.mark.parametrize(
    "base, unit, factors",
    [
        ("resnet18", RESNET18_GMACS, [1.3, 4, 20, 64]),
        ("efficientnet_b0", EFFICIENTNET_B0_GMACS, [1.3, 2.5, 12]),
    ],
)
def test_achieved_gmacs_are_within_5_percent_under_the_target(base, unit, factors):
    for factor in factors:
        result = fit(base, max_gmacs=unit * factor)
        (budget,) = result.budgets
        assert 0.95 <= budget.ratio <= 1.0, (factor, budget)
        # the result is what measure() says of the returned plan
        assert measure(result.plan).macs == result.complexity.macs
        assert budget.achieved == result.complexity.gmacs


def test_params_fit_is_the_largest_phi_and_width_fills_a_depth_step_gap():
    """Resolution cannot buy params: at 8x, every ResNet-18 stage gains a block at once, so the largest
    phi reaches only 84% of the budget; the remainder buys width at the same depths."""
    for factor in (2, 8):
        target = RESNET18_MPARAMS * factor
        result = fit("resnet18", max_params=target)
        (budget,) = result.budgets
        assert 0.95 <= budget.ratio <= 1.0, (factor, budget)
        assert result.phi == result.phi_max
        assert result.plan.resolution == plan("resnet18", result.phi).resolution
        assert result.plan.depths == plan("resnet18", result.phi).depths
        above = measure(plan("resnet18", result.phi + 2e-3))
        assert above.mparams > target  # the next step up does not fit: phi is the largest
        strict = fit("resnet18", max_params=target, fill_width=False)
        assert strict.fill == "none" and strict.plan.phi == result.phi
        if factor == 8:
            assert result.fill == "width" and result.plan.phi is None
            assert 0.84 <= strict.budgets[0].ratio < 0.85
            assert result.plan.widths > strict.plan.widths


def test_a_budget_below_the_base_gives_a_negative_phi():
    result = fit("resnet18", max_gmacs=0.5)
    assert result.phi < 0 and result.complexity.gmacs <= 0.5


def test_the_base_cost_as_budget_fits_phi_zero_exactly():
    result = fit("resnet18", max_gmacs=RESNET18_GMACS)
    assert result.phi == 0 and result.complexity.macs == 1_814_073_344


def test_two_budgets_both_hold():
    result = fit("resnet18", max_gmacs=8, max_params=20)
    assert [b.name for b in result.budgets] == ["max_gmacs", "max_params"]
    assert all(b.achieved <= b.target for b in result.budgets)


def test_a_budget_below_the_smallest_model_names_its_cost():
    with pytest.raises(CompoundError, match=r"smallest valid model .* costs 0.00280653 GMACs"):
        fit("resnet18", max_gmacs=0.001)


@pytest.mark.parametrize(
    "budgets, message",
    [
        ({}, "at least one budget"),
        ({"max_gmacs": 0}, "must be > 0"),
        ({"max_params": -3}, "must be > 0"),
        ({"max_gmacs": "4"}, "finite number"),
        ({"max_gmacs": float("nan")}, "finite number"),
    ],
)
def test_bad_budgets_are_clear_errors(budgets, message):
    with pytest.raises(CompoundError, match=message):
        fit("resnet18", **budgets)


def test_unknown_base_is_an_error():
    with pytest.raises(UnknownModelError):
        fit("resnet18_cs_phi2", max_gmacs=4)


def test_the_smallest_model_is_every_minimum():
    """The floor of the search is one block per stage at the minimum width and 32 px: a budget just
    above that model's cost fits, one just below is refused with its cost stated."""
    smallest = measure(plan("resnet18", -200.0))
    assert plan("resnet18", -200.0).widths == [8, 8, 8, 8] and smallest.resolution == 32
    fitted = fit("resnet18", max_params=smallest.mparams * 1.001)
    assert fitted.complexity.params <= smallest.params * 1.001
    with pytest.raises(CompoundError, match=r"smallest valid model \(depths \[1, 1, 1, 1\], widths \[8, 8, 8, 8\]"):
        fit("resnet18", max_params=smallest.mparams * 0.999)


def test_width_fill_keeps_the_scheduled_dropout():
    result = fit("efficientnet_b0", max_params=12.0)
    assert result.plan.constructor_args == plan("efficientnet_b0", result.phi).constructor_args


@pytest.mark.parametrize("factor", [3, 10])
def test_params_budget_within_5_percent_on_a_second_family(factor):
    target = 5.288548 * factor  # efficientnet_b0's parameters, in millions
    (budget,) = fit("efficientnet_b0", max_params=target).budgets
    assert 0.95 <= budget.ratio <= 1.0, budget


def test_a_params_budget_when_params_cannot_grow():
    """Resolution-only coefficients: parameters never change with phi, so no phi is 'the largest'."""
    with pytest.raises(CompoundError, match="does not grow with phi under these coefficients"):
        fit("resnet18", max_params=50, coefficients=(1.0, 1.0, 2**0.5))


def test_a_base_whose_constructor_rejects_the_smallest_plan_still_fits():
    # RegNet asserts four stages: the floor plan (phi = -200) has too few blocks for them, so it is skipped
    with pytest.raises(RuleError, match="per_stage_args"):
        plan("regnetx_016", -200.0, allow_oversize=True)
    target = 2 * measure("regnetx_016").gmacs
    result = fit("regnetx_016", max_gmacs=target)
    assert 0.95 <= result.budgets[0].ratio <= 1.0 and result.plan.phi > 0


@pytest.mark.parametrize(
    "limits",
    [
        {"max_gmacs": RESNET18_GMACS * 1e9},  # no room: the base's own resolution
        {"max_gmacs": RESNET18_GMACS * 1.1e9},  # the guess (232 px) is one step too many: 224 px
        {"max_gmacs": RESNET18_GMACS * 1.7e9},  # the guess (288 px) is right
        {"max_gmacs": RESNET18_GMACS * 9e9},  # many steps up
        {"max_train_memory": 200 * 2**20},  # weights, grads and momentum do not grow with pixels
    ],
)
def test_the_resolution_fill_finds_the_last_step_that_fits(limits):
    """The fill's first probe is a guess (cost growing with pixels squared); the answer must be the
    one a step-by-step scan finds, and a MACs budget must take few measurements."""
    from timm_compound.cost.fit import _Costs, _largest_resolution

    memory = "max_train_memory" in limits
    costs = _Costs("resnet18", None, 2 if memory else 1, memory)
    own = costs.plan(0.0)
    found = _largest_resolution(costs, 0.0, own, limits)
    probes = len(costs.cache)
    step, pixels = own.rule.resolution.divisor, own.resolution
    while costs.fits(costs.plan(0.0, resolution=pixels + step), limits):
        pixels += step
    assert costs.fits(own, limits) and found.resolution == pixels
    if not memory:
        assert probes <= 3, probes


def test_the_resolution_fill_stops_at_the_largest_phi_within_1_percent(monkeypatch):
    """At 4x, resnet18's phi_max at its own resolution lands within 1% of the budget: that plan is kept
    (strict compound scaling); searching the whole window would trade 0.28 phi for 0.2% more of the
    budget with a larger input, at 2.5x the measurements."""
    from timm_compound.cost import fit as fit_module

    kept = fit("resnet18", max_gmacs=RESNET18_GMACS * 4)
    monkeypatch.setattr(fit_module, "CLOSE_ENOUGH", 2.0)  # never close enough: the closest in the window wins
    closest = fit("resnet18", max_gmacs=RESNET18_GMACS * 4)
    assert kept.phi == kept.phi_max == closest.phi_max and closest.phi < kept.phi - 0.25
    assert 0.99 <= kept.budgets[0].ratio < closest.budgets[0].ratio <= 1.0
    assert kept.fill == "none" and closest.fill == "resolution" and kept.evaluations < closest.evaluations


def test_shapes_that_differ_only_in_schedules_are_searched_once(monkeypatch):
    """EfficientNet's dropout is scheduled by phi, so every phi step is a new structure; the neighbour
    scan and the resolution fill try each network shape (depths, widths, resolution) once instead.
    Same fitted plan, measured exactly, with far fewer measurements than treating dropout as shape."""
    from timm_compound.cost import fit as fit_module

    budget = measure("efficientnet_b0").gmacs * 16
    once = fit("efficientnet_b0", max_gmacs=budget)
    monkeypatch.setattr(fit_module, "_shape", fit_module._structure)  # dropout counted as shape
    every = fit("efficientnet_b0", max_gmacs=budget)
    assert once.plan == every.plan and once.complexity == every.complexity
    assert once.fill == "resolution" and 0.97 < once.budgets[0].ratio <= 1.0
    assert once.evaluations < every.evaluations / 2
    assert measure(once.plan, method="meta").macs == once.complexity.macs


def test_a_coarse_width_step_is_taken_with_less_depth(monkeypatch):
    """densenet121's growth rate moves in steps of 4 channels (32 -> 36 is +25% params) and all four
    blocks deepen together, so at 1.5x its params neither the next depth nor the next width fits at
    phi_max (82% of the budget). The width fill takes the next growth step with the largest depth
    multiplier that fits instead, and lands within 5%."""
    from timm_compound.cost import fit as fit_module

    target = measure("densenet121").mparams * 1.5
    result = fit("densenet121", max_params=target)
    at_phi_max = plan("densenet121", result.phi_max)
    assert result.fill == "width" and 0.95 <= result.budgets[0].ratio <= 1.0
    assert result.plan.widths[0] == at_phi_max.widths[0] + 4
    assert all(d <= d_max for d, d_max in zip(result.plan.depths, at_phi_max.depths))
    assert result.plan.multipliers.depth < at_phi_max.multipliers.depth
    assert measure(result.plan, method="meta").params == result.complexity.params
    monkeypatch.setattr(fit_module, "_shallower", lambda *args: None)  # widen at the fitted depths only
    assert fit("densenet121", max_params=target).budgets[0].ratio < 0.85
