"""The channel graph a trace produces: which tensor dimensions share one set of channels.

A *space* is one set of channels (a conv's outputs, the residual stream of a stage, an SE's reduced
channels). Spaces are nodes of a union-find: a residual addition, a depthwise conv or a per-channel
norm puts its operands' channels in one space. A dimension of a tensor or parameter is an *entry*:
one space, or several concatenated along that dimension (`torch.cat`). Each parameter dimension the
forward pass uses is recorded with its role: `out` (it indexes channels: copy along it) or `in` (a
conv's or linear's input channels: the outgoing weights that are split between copies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Entry = tuple[int, ...]  # atomic spaces concatenated along one dimension


@dataclass(frozen=True)
class ParamDim:
    """A dimension of a parameter or buffer, or of a view of one (`gamma.reshape(1, -1, 1, 1)`)."""

    name: str
    dim: int


@dataclass(frozen=True)
class Use:
    """How the forward pass uses one dimension of a parameter or buffer."""

    entry: Entry
    role: Literal["out", "in"] = "out"
    groups: int = 1  # role "in": the conv's groups; the dimension then holds in_channels / groups


class TraceError(Exception):
    """The trace met something it cannot represent (internal: turned into a CompoundError by callers)."""


@dataclass
class Spaces:
    """Union-find over channel spaces; each root carries its size and why it may not grow."""

    sizes: list[int] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    blocked: dict[int, str] = field(default_factory=dict)  # root -> why duplicating its channels breaks the function

    def new(self, size: int, blocked: str | None = None) -> int:
        self.sizes.append(int(size))
        self.parent.append(len(self.parent))
        if blocked:
            self.blocked[len(self.parent) - 1] = blocked
        return len(self.parent) - 1

    def find(self, node: int) -> int:
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self.sizes[ra] != self.sizes[rb]:
            raise TraceError(f"channel spaces of {self.sizes[ra]} and {self.sizes[rb]} channels meet")
        ra, rb = min(ra, rb), max(ra, rb)  # the earlier space names the class: stable across runs
        self.parent[rb] = ra
        if rb in self.blocked:
            self.blocked.setdefault(ra, self.blocked.pop(rb))
        return ra

    def block(self, entry: Entry, why: str) -> None:
        for node in entry:
            self.blocked.setdefault(self.find(node), why)

    def why_blocked(self, node: int) -> str | None:
        return self.blocked.get(self.find(node))

    def size(self, entry: Entry) -> int:
        return sum(self.sizes[self.find(node)] for node in entry)

    def unite(self, a: Entry, b: Entry, why: str) -> Entry:
        """One entry for two that must hold the same channels; concatenations that do not line up
        are blocked (their channels cannot be duplicated consistently) rather than merged."""
        if len(a) == len(b) and all(self.sizes[self.find(x)] == self.sizes[self.find(y)] for x, y in zip(a, b)):
            return tuple(self.union(x, y) for x, y in zip(a, b))
        self.block(a + b, f"concatenated channels that do not line up meet in {why}")
        return a


@dataclass
class ChannelGraph:
    """What a trace found: spaces, how each parameter dimension uses them, and the ops in order."""

    spaces: Spaces = field(default_factory=Spaces)
    uses: dict[str, dict[int, Use]] = field(default_factory=dict)  # parameter or buffer -> dim -> use
    conv_groups: dict[str, int] = field(default_factory=dict)  # conv/linear weight -> groups
    biases: dict[str, str] = field(default_factory=dict)  # bias -> its conv/linear weight
    norms: dict[str, tuple[str, float]] = field(default_factory=dict)  # norm tensor -> (mean|var|scale|shift, eps)
    opaque: dict[str, str] = field(default_factory=dict)  # parameter -> the op the trace could not follow
    # each conv, linear and norm in order: (its weight, output channels, their dim, the output if kept)
    outputs: list[tuple[str, Entry, int, object]] = field(default_factory=list)

    def root(self, node: int) -> int:
        return self.spaces.find(node)

    def bind(self, ref: ParamDim, entry: Entry, role: Literal["out", "in"] = "out", groups: int = 1) -> Entry:
        """Record that `ref` indexes `entry`'s channels; a second use of the same dimension unites them."""
        dims = self.uses.setdefault(ref.name, {})
        known = dims.get(ref.dim)
        if known is not None:
            if known.role != role or known.groups != groups:
                self.spaces.block(known.entry + entry, f"{ref.name} is used both as {known.role} and {role} channels")
                return known.entry
            entry = self.spaces.unite(known.entry, entry, ref.name)
        dims[ref.dim] = Use(entry, role, groups)
        return entry

    def resolved(self, name: str) -> dict[int, Use]:
        """A parameter's uses with every entry's spaces at their roots."""
        return {
            dim: Use(tuple(self.root(n) for n in use.entry), use.role, use.groups)
            for dim, use in self.uses.get(name, {}).items()
        }
