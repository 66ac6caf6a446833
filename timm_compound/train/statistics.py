"""How sure a comparison of accuracies is: intervals over seeds, paired tests over images, Holm's correction.

Everything is computed by scipy.stats and numpy, never re-derived by hand; the tests pin each
number against an independently computed value. Accuracies and differences are in percent points.

- `spread(top1, correct)`: a model's mean top-1 over seeds with its 95% interval: Student's t over
  the seeds, or with one seed the exact (Clopper-Pearson) binomial interval over the images.
- `paired(a, b)`: model a minus model b on the same images, each a (seeds x images) array of 0/1
  (right or wrong), seeds paired (seed k of a with seed k of b). The difference is the mean over
  seeds of the per-seed accuracy difference. Seeds and images are crossed (every seed sees every
  image), so its 95% interval is a two-way ("pigeonhole", Owen 2007) paired bootstrap: each resample
  draws the images with replacement (one draw for both models and every seed, so the pairing and
  each image's difficulty are kept) and the seed pairs with replacement, and recomputes the
  difference; the interval spans its 2.5th to 97.5th percentiles. It covers both the choice of
  validation images and the training seeds (with one seed, only the images: scipy.stats.bootstrap).
  The p-value with one seed is McNemar's exact test (a binomial test on the images the two models
  disagree on); with several, the bootstrap's: the share of resampled differences, centred on the
  observed one, at least as far from zero as the observed one.
- `holm(p)`: Holm's step-down correction of a family of p-values.
- `above_chance(correct, chance)`: a one-sided binomial test of top-1 against a chance rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
ALPHA = 0.05  # significant: Holm-corrected p below this
RESAMPLES = 10_000  # bootstrap resamples
BOOTSTRAP_SEED = 0  # the bootstrap's generator: the same inputs give the same interval and p


@dataclass(frozen=True)
class Spread:
    """One model's top-1 over its seeds: the values, their mean, a 95% interval and the sample SD."""

    top1: list[float]
    mean: float
    ci: tuple[float, float] | None  # None: one seed and no per-image results to build an interval from
    sd: float | None  # None with one seed
    method: str


def spread(top1: list[float], correct: np.ndarray | None = None, confidence: float = CONFIDENCE) -> Spread:
    """`top1`: percent per seed; `correct`: the one seed's 0/1 per image (used when there is one seed)."""
    import scipy.stats

    values = [float(value) for value in top1]
    if not values:
        raise ValueError("spread() needs at least one top-1 value")
    mean = float(np.mean(values))
    if len(values) == 1:
        if correct is None or len(correct) == 0:
            return Spread(values, mean, None, None, "one seed")
        right, images = int(np.sum(correct)), len(correct)
        interval = scipy.stats.binomtest(right, images).proportion_ci(confidence_level=confidence, method="exact")
        return Spread(
            values,
            mean,
            (100.0 * interval.low, 100.0 * interval.high),
            None,
            f"exact binomial interval over {images} images (one seed)",
        )
    sd = float(np.std(values, ddof=1))
    if sd == 0.0:
        ci = (mean, mean)
    else:
        low, high = scipy.stats.t.interval(confidence, len(values) - 1, loc=mean, scale=scipy.stats.sem(values))
        ci = (max(0.0, float(low)), min(100.0, float(high)))  # an accuracy lies in 0-100
    return Spread(values, mean, ci, sd, f"t-interval over {len(values)} seeds (within 0-100)")


@dataclass(frozen=True)
class Paired:
    """a minus b on the same images: the difference in points, its 95% interval, the p-value and the test."""

    diff_mean: float
    diff_ci: tuple[float, float]
    p: float
    test: str
    seeds: int
    images: int
    per_seed: list[float]  # the difference seed by seed


def paired(
    a: np.ndarray,
    b: np.ndarray,
    *,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> Paired:
    """Paired comparison of two models' per-image results, (seeds x images) arrays of 0/1 (see the module)."""
    import scipy.stats

    a = np.atleast_2d(np.asarray(a, dtype=float))
    b = np.atleast_2d(np.asarray(b, dtype=float))
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired() needs two equal, non-empty (seeds x images) arrays, got {a.shape} and {b.shape}")
    seeds, images = a.shape
    difference = 100.0 * (a - b)  # seeds x images, in points
    observed = float(difference.mean())
    rng = np.random.default_rng(seed)
    tail = 100 * (1 - confidence) / 2
    if seeds == 1:
        boot = scipy.stats.bootstrap(
            (difference[0],), np.mean, n_resamples=resamples, confidence_level=confidence, method="percentile", rng=rng
        )
        low, high = (float(x) for x in boot.confidence_interval)
        a_only = int(np.sum((a[0] == 1) & (b[0] == 0)))
        b_only = int(np.sum((a[0] == 0) & (b[0] == 1)))
        p = 1.0 if a_only + b_only == 0 else float(scipy.stats.binomtest(a_only, a_only + b_only, 0.5).pvalue)
        test = f"McNemar exact test ({a_only} vs {b_only} discordant images), 1 seed"
    else:
        replicates = two_way_bootstrap(difference, resamples, rng)
        low, high = (float(x) for x in np.percentile(replicates, [tail, 100 - tail]))
        extreme = int(np.sum(np.abs(replicates - observed) >= abs(observed) - 1e-12))
        p = (extreme + 1) / (resamples + 1)
        test = f"paired two-way bootstrap over {images} images and {seeds} seeds ({resamples} resamples)"
    return Paired(observed, (low, high), min(1.0, p), test, seeds, images, [float(x) for x in difference.mean(axis=1)])


def two_way_bootstrap(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of a (seeds x images) array over `resamples` resamples of its images and its seeds, each with
    replacement and independently (images drawn once for every seed): the pigeonhole bootstrap of a
    crossed design."""
    seeds, images = values.shape
    chunk = max(1, 2_000_000 // (images * seeds))
    found = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        drawn_images = rng.integers(images, size=(size, images))
        per_seed = values[:, drawn_images].mean(axis=2).T  # size x seeds
        drawn_seeds = rng.integers(seeds, size=(size, seeds))
        found.append(np.take_along_axis(per_seed, drawn_seeds, axis=1).mean(axis=1))
    return np.concatenate(found)


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None and does not count in the family)."""
    present = [index for index, p in enumerate(p_values) if p is not None and not math.isnan(p)]
    adjusted: list[float | None] = [None] * len(p_values)
    if not present:
        return adjusted
    values = np.array([p_values[index] for index in present], dtype=float)
    order = np.argsort(values, kind="stable")
    m = len(values)
    stepped = np.minimum(1.0, np.maximum.accumulate(values[order] * (m - np.arange(m))))
    result = np.empty(m)
    result[order] = stepped
    for index, value in zip(present, result):
        adjusted[index] = float(value)
    return adjusted


def above_chance(correct: np.ndarray, chance: float) -> float:
    """One-sided p-value that top-1 exceeds `chance` (a rate in [0, 1]) on these images (binomial test)."""
    import scipy.stats

    correct = np.asarray(correct)
    return float(scipy.stats.binomtest(int(correct.sum()), int(correct.size), chance, alternative="greater").pvalue)


def chance_rate(labels: np.ndarray) -> float:
    """Top-1 of always guessing the most frequent class of these labels (1/classes when balanced)."""
    labels = np.asarray(labels)
    return float(np.bincount(labels).max() / labels.size) if labels.size else 0.0


def points(value: float, digits: int = 1) -> str:
    """'+1.2' / '-0.4': a difference in percent points with its sign."""
    return f"{value:+.{digits}f}"


def p_text(p: float) -> str:
    """'p=0.003', 'p<0.001', 'p=0.41', 'p=1'."""
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.2g}" if p < 0.1 else f"p={p:.2f}".rstrip("0").rstrip(".")
