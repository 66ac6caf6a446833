"""Where measured latency crosses a budget along a direction of phi: MACs bracket, timings decide.

Timings cost seconds and carry noise, so the search (used by ``fit(max_latency_ms=...)`` and by
experiments matched in measured latency) times as few networks as it can:

- plans are keyed by the network they build (`Direction.key`): many phis round to the same
  network, and each network is timed once (phi moves freely within it);
- MACs, counted in milliseconds, guess where the edge lies: from the timed points, latency is taken
  to grow as a power of MACs (fitted in log-log between the two nearest timed points), and the next
  plan timed is the largest whose MACs that guess puts at the budget; guesses alternate with plain
  bisection in phi, so a poor guess never stalls the search;
- a timing whose 95% interval straddles the budget is timed again (its blocks pooled, so the
  interval narrows) up to `RETIMES` times; if it still straddles, its median decides and the
  result says the verdict is not sure;
- the search ends once a timed network's median is within the timing's precision (3%) under the
  budget: no larger network could be told apart from it with confidence;
- at the end, the networks either side of the edge are compared: where their time per MAC differs
  by more than JUMP (1.2x), one of them was most likely timed under other load (or read from the
  cache, timed another day), so both are timed again, fresh and interleaved (lo, hi, hi, lo, pooled
  in pairs, so a drifting load weighs on both alike), and the search runs again (at most RECHECKS
  times), reading no cached timing from then on.

Latency is taken to grow with phi between timed plans (as MACs do); a later network that is faster
despite more MACs is not looked for, since every guess costs a timing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from timm_compound.cost.latency import Latency
from timm_compound.scaling.plan import ScalePlan

TOLERANCE = 1e-3  # the search stops when the bracket is this narrow in phi
RETIMES = 2  # extra timings of a plan whose interval straddles the budget
GROWTH = 4.0  # the most a guess above the last plan that fitted may multiply its MACs
SLOPE_SPAN = 1.5  # two timed points fix the power of MACs only when their MACs are this far apart
SLOPES = (0.5, 1.5)  # ... and within these bounds (noise can make two points say anything); else 1
JUMP = 1.2  # networks either side of the edge whose time per MAC differs more are both timed again
RECHECKS = 2  # ... at most this many times in one search


@dataclass(frozen=True)
class Direction:
    """Plans along one direction of phi, as the search sees them.

    `plan(phi)` is None where phi is not a candidate (past the size limits, over another budget,
    rejected by the base's constructor). `time(plan, earlier, fresh=False)` times the plan's network,
    pooling with an earlier timing of it when given, and with `fresh` without reading a kept timing
    (the cache). `low`..`high` is the range of phi searched.
    """

    plan: Callable[[float], ScalePlan | None]
    macs: Callable[[ScalePlan], int]
    key: Callable[[ScalePlan], Hashable]
    time: Callable[..., Latency]  # (plan, earlier, fresh=False): `fresh` re-times, reading no kept timing
    low: float
    high: float


@dataclass
class Point:
    """A phi, its plan, and the timing of that plan's network (None: the plan is not a candidate)."""

    phi: float
    plan: ScalePlan | None
    latency: Latency | None = None
    fits: bool = False
    sure: bool = True  # the interval lies wholly on one side of the budget
    timings: int = 0  # how many times this network was timed (pooled)


@dataclass
class Edge:
    """The last timed plan under the budget (`fits`, None when even `low` is over it) and the first over
    it (`over`, None when `high` fits), with every timing taken on the way."""

    fits: Point | None
    over: Point | None
    timed: list[Point] = field(default_factory=list)

    @property
    def timings(self) -> int:
        return sum(point.timings for point in self.timed)


class Search:
    """The timed networks of one direction against one budget in milliseconds."""

    def __init__(self, direction: Direction, budget_ms: float):
        self.direction, self.budget = direction, budget_ms
        self.points: dict[Hashable, Point] = {}  # one per network
        self.timed: list[Point] = []
        self.rechecks = 0
        self.fresh = False  # set once the timings have been shown inconsistent: kept ones are read no more

    def at(self, phi: float, fresh: bool = False) -> Point:
        """The point at phi: its network timed (once; again while its interval straddles the budget;
        with `fresh`, anew and without reading the cache)."""
        scaled = self.direction.plan(phi)
        if scaled is None:
            return Point(phi, None, fits=False)
        key = self.direction.key(scaled)
        known = self.points.get(key)
        if known is not None and not fresh:
            return Point(phi, scaled, known.latency, known.fits, known.sure, known.timings)
        latency = self.direction.time(scaled, None, fresh=fresh or self.fresh)
        timings = 1
        while _straddles(latency, self.budget) and timings <= RETIMES:
            latency = self.direction.time(scaled, latency)
            timings += 1
        return self._keep(phi, scaled, latency, timings + (0 if known is None else known.timings))

    def _keep(self, phi: float, scaled: ScalePlan, latency: Latency, timings: int) -> Point:
        """Record a network's timing (replacing an earlier one) and its verdict against the budget."""
        key = self.direction.key(scaled)
        point = Point(
            phi, scaled, latency, latency.median_ms <= self.budget, not _straddles(latency, self.budget), timings
        )
        self.points[key] = point
        self.timed = [other for other in self.timed if other.plan is None or self.direction.key(other.plan) != key]
        self.timed.append(point)
        return point

    def _retime_pair(self, lo: Point, hi: Point) -> None:
        """Both networks timed anew, in the order lo, hi, hi, lo (each pair pooled): a load that rises or
        falls steadily meanwhile weighs on both alike."""
        first = self.direction.time(lo.plan, None, fresh=True)
        second = self.direction.time(hi.plan, None, fresh=True)
        second = self.direction.time(hi.plan, second)
        first = self.direction.time(lo.plan, first)
        self._keep(lo.phi, lo.plan, first, lo.timings + 2)
        self._keep(hi.phi, hi.plan, second, hi.timings + 2)

    def close_enough(self, point: Point) -> bool:
        """A median within the timing's precision under the budget: a larger network could not be told
        apart from this one with confidence, so the search ends here."""
        latency = point.latency
        return latency is not None and latency.median_ms >= (1 - latency.precision) * self.budget

    def same_network(self, a: Point, b: Point) -> bool:
        return a.plan is not None and b.plan is not None and self.direction.key(a.plan) == self.direction.key(b.plan)

    def edge(self, start: float = 0.0) -> Edge:
        """The bracket around the budget, from `start` (timed first)."""
        first = self.at(start)
        if first.fits:
            lo, hi = self._gallop(first)
        else:
            floor = self.at(self.direction.low)
            if not floor.fits:
                return Edge(None, floor, self.timed)
            lo, hi = floor, first
        if hi is not None:
            lo, hi = self._narrow(lo, hi)
            if self.rechecks < RECHECKS and self._implausible(lo, hi):
                # the two networks either side of the edge disagree about time per MAC: one was likely
                # timed while the machine was busier (or read from the cache, timed another day).
                # Both are timed again, now, and the search runs again on what it knows, reading no
                # kept timing from here on.
                self.rechecks += 1
                self.fresh = True
                self._retime_pair(lo, hi)
                return self.edge(start)
        return Edge(lo, hi, self.timed)

    def _implausible(self, lo: Point, hi: Point) -> bool:
        """Time per MAC differs by more than JUMP between the timed networks either side of the edge."""
        if lo.latency is None or hi.latency is None or lo.plan is None or hi.plan is None:
            return False
        per_mac = [point.latency.median_ms / max(self.direction.macs(point.plan), 1) for point in (lo, hi)]
        return max(per_mac) > JUMP * min(per_mac)

    def _gallop(self, lo: Point) -> tuple[Point, Point | None]:
        """Up from a point that fits: (the last that fits, the first that does not, None when `high` fits)."""
        previous = None
        while lo.phi < self.direction.high:
            target = self._target_macs(previous or lo, lo, growth=True)
            point = self.at(self._phi_for_macs(target, lo.phi, self.direction.high))
            if point.fits and self.same_network(point, lo):  # the guess rounded back to lo's network
                point = self._next_network(lo)
                if point is None:
                    return lo, None
            if not point.fits:
                return lo, point
            previous, lo = lo, point
        return lo, None

    def _next_network(self, lo: Point) -> Point | None:
        """The point at the first phi above lo's whose plan is another network (or no candidate), timed;
        None when lo's network reaches `high`."""
        high, step = self.direction.high, 1e-2

        def same(phi: float) -> bool:
            scaled = self.direction.plan(phi)
            return scaled is not None and self.direction.key(scaled) == self.direction.key(lo.plan)

        near, far = lo.phi, min(lo.phi + step, high)
        while same(far):
            if far >= high:
                return None
            near, far, step = far, min(far + step, high), step * 2
        while far - near > TOLERANCE:
            middle = (near + far) / 2
            near, far = (middle, far) if same(middle) else (near, middle)
        return self.at(far)

    def _narrow(self, lo: Point, hi: Point) -> tuple[Point, Point]:
        """Bisect in phi (guesses from MACs on alternate steps) until the bracket is TOLERANCE wide or lo
        is close enough; phis whose network is lo's or hi's move the bracket without a timing. lo ends at
        the largest phi (to TOLERANCE) that still builds its network."""
        guess = True
        while hi.phi - lo.phi > TOLERANCE and not self.close_enough(lo):
            phi = (lo.phi + hi.phi) / 2
            if guess and lo.latency is not None and hi.latency is not None and hi.plan is not None:
                target = self._target_macs(lo, hi, growth=False)
                guessed = self._phi_for_macs(target, lo.phi, hi.phi)
                if lo.phi < guessed < hi.phi:
                    phi = guessed
            guess = not guess
            point = self._peek(phi, lo, hi)
            if point.fits:
                lo = point
            else:
                hi = point
        near, far = lo.phi, hi.phi
        while far - near > TOLERANCE:  # free: no new network is timed
            middle = (near + far) / 2
            scaled = self.direction.plan(middle)
            if scaled is not None and self.same_network(Point(middle, scaled), lo):
                near = middle
            else:
                far = middle
        if near != lo.phi:
            lo = Point(near, self.direction.plan(near), lo.latency, lo.fits, lo.sure, lo.timings)
        return lo, hi

    def _peek(self, phi: float, lo: Point, hi: Point) -> Point:
        """The point at phi, without timing it when its network is lo's or hi's."""
        scaled = self.direction.plan(phi)
        if scaled is None:
            return Point(phi, None, fits=False)
        for known in (lo, hi):
            if known.plan is not None and self.direction.key(scaled) == self.direction.key(known.plan):
                return Point(phi, scaled, known.latency, known.fits, known.sure, known.timings)
        return self.at(phi)

    def _target_macs(self, a: Point, b: Point, *, growth: bool) -> float:
        """MACs at which latency, growing as a power of MACs through a and b, reaches the budget."""
        macs_b = self.direction.macs(b.plan)
        slope = 1.0
        if a is not b and a.plan is not None and a.latency is not None:
            macs_a = self.direction.macs(a.plan)
            if max(macs_a, macs_b) >= SLOPE_SPAN * min(macs_a, macs_b):
                slope = math.log(b.latency.median_ms / a.latency.median_ms) / math.log(macs_b / macs_a)
                slope = min(max(slope, SLOPES[0]), SLOPES[1])
        target = macs_b * (self.budget / b.latency.median_ms) ** (1 / slope)
        return min(target, macs_b * GROWTH) if growth else target

    def _phi_for_macs(self, target: float, lo: float, hi: float) -> float:
        """The largest phi in [lo, hi] whose plan's MACs are at most `target` (bisected on counted MACs)."""

        def under(phi: float) -> bool:
            scaled = self.direction.plan(phi)
            return scaled is not None and self.direction.macs(scaled) <= target

        if not under(lo):
            return lo
        step = 0.25  # gallop first: a far `hi` would plan (and count) needlessly large models
        while lo + step < hi and under(lo + step):
            lo, step = lo + step, step * 2
        hi = min(hi, lo + step)
        if under(hi):
            return hi
        while hi - lo > TOLERANCE:
            middle = (lo + hi) / 2
            lo, hi = (middle, hi) if under(middle) else (lo, middle)
        return lo


def _straddles(latency: Latency, budget: float) -> bool:
    low, high = latency.ci_ms
    return low <= budget < high
