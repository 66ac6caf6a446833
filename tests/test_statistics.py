"""The statistics behind an experiment's verdict, pinned against values computed another way (t tables,
the binomial formula, Holm by hand, exhaustive enumeration of a bootstrap) on fixed synthetic per-image
results, and the comparisons and sentences an experiment builds from them."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from timm_compound.cost.complexity import Complexity
from timm_compound.experiment import verdicts
from timm_compound.experiment.results import Row, Run, Variant
from timm_compound.train.predictions import ImageResults
from timm_compound.train.statistics import above_chance, chance_rate, holm, p_text, paired, spread, two_way_bootstrap

T_975_DF2 = 4.302652729749464  # Student's t, 97.5th percentile, 2 degrees of freedom (a printed table: 4.303)


def test_three_seeds_give_a_t_interval():
    found = spread([90.0, 92.0, 91.0])
    half = T_975_DF2 * 1.0 / math.sqrt(3)  # sd 1, sem 1/sqrt(3)
    assert found.mean == 91.0 and found.sd == pytest.approx(1.0)
    assert found.ci == pytest.approx((91.0 - half, 91.0 + half), abs=1e-9)
    assert spread([50.0, 50.0]).ci == (50.0, 50.0) and spread([50.0, 50.0]).sd == 0.0
    assert spread([1.0, 99.0]).ci == (0.0, 100.0)  # t-interval of 2 seeds 98 points apart: clipped to 0-100


def test_one_seed_gives_the_exact_binomial_interval_over_images():
    correct = np.array([1] * 45 + [0] * 5)
    found = spread([90.0], correct)
    # Clopper-Pearson from the beta distribution (the textbook formula, not binomtest)
    low, high = scipy.stats.beta.ppf(0.025, 45, 6), scipy.stats.beta.ppf(0.975, 46, 5)
    assert found.ci == pytest.approx((100 * low, 100 * high), rel=1e-9) and found.sd is None
    assert found.ci == pytest.approx((78.19, 96.67), abs=0.01)
    assert spread([90.0]).ci is None


def test_mcnemar_with_one_seed():
    a = np.array([1] * 10 + [0] * 2 + [1] * 30 + [0] * 8)  # a alone right on 10 images, b alone on 2
    b = np.array([0] * 10 + [1] * 2 + [1] * 30 + [0] * 8)
    found = paired(a, b)
    exact = 2 * sum(math.comb(12, k) for k in range(3)) / 2**12  # two-sided binomial, 12 discordant pairs
    assert found.p == pytest.approx(exact) == pytest.approx(0.03857421875)
    assert found.diff_mean == pytest.approx(100 * 8 / 50) and found.seeds == 1 and "McNemar" in found.test
    low, high = found.diff_ci
    assert low < 16.0 < high and low > 0  # a paired bootstrap over the 50 images


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, None, 0.01]) == [pytest.approx(0.5), None, pytest.approx(0.02)]
    assert holm([0.3, 0.04]) == pytest.approx([0.3, 0.08]) and holm([0.6, 0.7, 0.9]) == [1.0, 1.0, 1.0]


def _synthetic(rate: float, seeds: int, images: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((seeds, images)) < rate).astype(int)


def test_a_known_difference_is_significant_and_identical_models_are_not():
    better, worse = _synthetic(0.9, 3, 400, 1), _synthetic(0.75, 3, 400, 2)
    found = paired(better, worse)
    assert found.diff_mean == pytest.approx(100 * (better.mean() - worse.mean()))
    assert found.p < 0.001 and found.diff_ci[0] > 5
    assert found.per_seed == pytest.approx(list(100 * (better - worse).mean(axis=1)))
    same = paired(better, better)
    assert same.diff_mean == 0 and same.diff_ci == (0.0, 0.0) and same.p == 1.0


def test_the_two_way_bootstrap_resamples_images_as_a_plain_bootstrap_does():
    """With every seed the same, resampling seeds changes nothing: the interval is the image bootstrap's,
    about mean +- 1.96 sd / sqrt(n)."""
    row = np.random.default_rng(3).normal(2.0, 10.0, size=2000)
    replicates = two_way_bootstrap(np.stack([row] * 3), 4000, np.random.default_rng(0))
    assert replicates.mean() == pytest.approx(row.mean(), abs=0.05)
    assert replicates.std() == pytest.approx(row.std() / math.sqrt(2000), rel=0.05)


def test_the_two_way_bootstrap_resamples_seeds_as_enumeration_says():
    """With every image the same within a seed, only the seed draw matters: the 27 equally likely draws of
    3 seeds with replacement from (0, 3, 6), enumerated, give its distribution."""
    values = np.repeat(np.array([[0.0], [3.0], [6.0]]), 50, axis=1)
    replicates = two_way_bootstrap(values, 20000, np.random.default_rng(0))
    enumerated = [sum(draw) / 3 for draw in itertools.product([0.0, 3.0, 6.0], repeat=3)]
    for value in sorted(set(enumerated)):
        assert np.mean(np.isclose(replicates, value)) == pytest.approx(enumerated.count(value) / 27, abs=0.01)


def test_chance_and_formatting():
    assert chance_rate(np.array([0, 1, 1, 2])) == 0.5
    assert above_chance(np.array([1] * 9 + [0]), 0.1) == pytest.approx(scipy.stats.binom.sf(8, 10, 0.1))
    assert [p_text(p) for p in (0.0004, 0.003, 0.0123, 0.41, 0.4, 1.0)] == [
        "p<0.001",
        "p=0.003",
        "p=0.012",
        "p=0.41",
        "p=0.4",
        "p=1",
    ]


# --- an experiment's comparisons and verdicts, on synthetic runs -----------------------------------


def _variant(name: str, strategy: str, budget: float | None, macs: int, model: str = "m") -> Variant:
    cost = Complexity(params=1, macs=macs, activations=1, weight_bytes=1, resolution=32, batch_size=1)
    return Variant(
        name=name, strategy=strategy, budget=budget, model=model, plan=None, resolution=32, cost=cost, ratio=macs / 100
    )


def _row(variant: Variant, correct: np.ndarray) -> Row:
    from timm_compound.train.results import EpochMetrics

    runs = []
    for seed, right in enumerate(correct):
        labels = np.arange(len(right)) % 10
        images = ImageResults(np.arange(len(right)), labels, np.where(right == 1, labels, (labels + 1) % 10), 1)
        metrics = EpochMetrics(1, 1.0, 50.0, 1.0, images.top1, 100.0, 0.1, 1.0, 10.0, 64, 64)
        runs.append(Run(seed, Path(f"/nowhere/{variant.name}/seed-{seed}"), [metrics], "completed", None, images))
    return Row(variant, runs)


def test_compound_against_each_strategy_and_a_reference_against_its_nearest_variant():
    rows = [
        _row(_variant("base", "base", 1.0, 100), _synthetic(0.70, 3, 300, 10)),
        _row(_variant("2x-depth", "depth", 2.0, 195), _synthetic(0.72, 3, 300, 11)),
        _row(_variant("2x-width", "width", 2.0, 201), _synthetic(0.88, 3, 300, 12)),
        _row(_variant("2x-compound", "compound", 2.0, 199), _synthetic(0.88, 3, 300, 13)),
        _row(_variant("ref-resnet34", "reference", None, 210, "resnet34"), _synthetic(0.60, 3, 300, 14)),
    ]
    verdicts.set_spreads(rows)
    assert rows[0].spread.top1 == [run.top1 for run in rows[0].runs] and rows[0].spread.ci is not None
    found = verdicts.compare(rows)
    assert [(c.budget, c.a, c.b) for c in found] == [
        (2.0, "2x-compound", "2x-depth"),
        (2.0, "2x-compound", "2x-width"),
        (2.0, "2x-compound", "ref-resnet34"),
    ]
    assert holm([c.result.p for c in found]) == [c.p_holm for c in found]  # corrected together
    depth, width, reference = found
    assert depth.significant and depth.result.diff_mean > 10
    assert not width.significant
    assert reference.significant and reference.result.diff_mean > 20
    record = depth.to_dict()
    assert set(record) >= {"budget", "a", "b", "diff_mean", "diff_ci", "p", "p_holm", "significant", "test"}
    sentence = verdicts.verdicts(rows, found)[2.0]
    assert sentence.startswith("2x the base's GMACs: compound beats depth by +")
    assert "no significant difference between compound and width" in sentence
    assert "compound beats resnet34 by +" in sentence and "3 seeds" in sentence
    assert "seed-to-seed spread is" in sentence and "Holm-corrected for 3 comparisons" in sentence


def test_one_seed_says_so_and_missing_per_image_results_are_named():
    rows = [
        _row(_variant("2x-depth", "depth", 2.0, 195), _synthetic(0.7, 1, 100, 1)),
        _row(_variant("2x-compound", "compound", 2.0, 199), _synthetic(0.7, 1, 100, 2)),
    ]
    verdicts.set_spreads(rows)
    assert rows[0].spread.sd is None and rows[0].spread.ci is not None  # the binomial interval
    found = verdicts.compare(rows)
    assert "McNemar" in found[0].result.test
    assert "no seed-to-seed spread" in verdicts.verdicts(rows, found)[2.0]
    rows[1].runs[0].images = None
    missing = verdicts.compare(rows)
    assert missing[0].result is None and "no per-image results" in missing[0].note and not missing[0].significant
