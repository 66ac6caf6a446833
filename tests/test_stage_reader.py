"""Derived layouts read their stages back from a skeleton of memoised blocks (cost.stage_reader):
the same depths and widths as a full meta build, and the full build still reports errors."""

import pytest

import timm_compound as tc
from timm_compound.cost import stage_reader
from timm_compound.scaling import readback
from timm_compound.scaling.plan import plan

DERIVED_BASES = ["ghostnet_100", "regnety_008", "regnetx_016"]  # multiplier and fields layouts
POINTS = [{"phi": -1.0}, {"phi": 0.37}, {"phi": 2.0}, {"d": 1.3, "w": 0.8, "r": 1.0}, {"d": 1.0, "w": 1.7, "r": 1.0}]


def _stages(base, point):
    scaled = plan(base, **point)
    return scaled.depths, scaled.widths


@pytest.mark.parametrize("base", DERIVED_BASES)
def test_skeleton_read_back_equals_the_full_build(base, monkeypatch):
    readback.clear()
    _stages(base, {"phi": 0.0})  # the base's first read-back: a full build that names its block classes
    calls = []
    original = stage_reader.read

    def counting(*args):
        found = original(*args)
        calls.append(found is not None)
        return found

    monkeypatch.setattr(readback, "_fast_reader", counting)
    fast = [_stages(base, point) for point in POINTS]
    assert calls and all(calls), "every read-back after the first came from a skeleton"

    monkeypatch.setattr(readback, "_fast_reader", None)
    readback.clear()
    full = [_stages(base, point) for point in POINTS]
    assert fast == full
    assert len({(tuple(d), tuple(w)) for d, w in full}) == len(POINTS)  # the points differ: not a vacuous check


def test_a_plan_the_constructor_rejects_still_names_the_rule_field():
    readback.clear()
    _stages("regnety_008", {"phi": 0.0})
    with pytest.raises(tc.RuleError, match="model_cfg"):
        plan("regnety_008", d=1.0, w=0.01, r=1.0)  # w0 below RegNet's minimum: timm's own assert


def test_the_cost_models_clear_forgets_the_learned_block_classes():
    from timm_compound.cost import model as cost_model

    _stages("ghostnet_100", {"phi": 0.5})
    assert stage_reader._classes
    cost_model.clear()
    assert not stage_reader._classes
    readback.clear()
    depths, widths = _stages("ghostnet_100", {"phi": 0.5})  # a full build again, which names them anew
    assert stage_reader._classes and len(depths) == len(widths) > 0
