"""CLI start-up: process CPU seconds (user + system, the child's) of commands that need no model, for this
checkout and, side by side in the same run, for another source tree (e.g. an export of an older commit).

    python benchmarks/bench_startup.py                       # this checkout only
    git archive <commit> | tar -x -C /tmp/before
    python benchmarks/bench_startup.py --before /tmp/before --runs 7

Each command runs `--runs` times per tree, the trees alternating, so a busy machine slows both alike; the
table gives medians, minimums and the after/before ratio of the medians. `list` is timed warm (its cache
filled by one untimed run first, in a throw-away XDG_CACHE_HOME); the cold first run is timed apart.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [
    ["--help"],
    ["list"],
    ["rules", "validate", "rules/resnet.yaml"],
    ["rules", "validate", "{garbage}"],
    ["rules", "schema"],
    ["show", "resnet18"],
    ["table", "--help"],
]


def cpu_seconds(args: list[str], source: Path, env: dict[str, str]) -> float:
    """CPU seconds of one `timm-compound ARGS` run with `source` first on the import path."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-c", "import timm_compound_cli; timm_compound_cli.main()", *args],
        cwd=source,
        env={**env, "PYTHONPATH": str(source)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another source tree to time beside this checkout")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    trees = {"after": ROOT, **({"before": options.before.resolve()} if options.before else {})}
    with tempfile.TemporaryDirectory() as tmp:
        garbage = Path(tmp) / "garbage.yaml"
        garbage.write_text("family: [unclosed\n")
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        env.pop("TIMM_COMPOUND_RULES_PATH", None)
        cold = {name: cpu_seconds(["list"], tree, env) for name, tree in trees.items()}  # fills the list cache
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(options.runs):
            for command in COMMANDS:
                args = [a.format(garbage=garbage) for a in command]
                for name, tree in trees.items():
                    times.setdefault((" ".join(command), name), []).append(cpu_seconds(args, tree, env))
    print(
        f"CPU seconds per command (user + system), {options.runs} runs per tree, trees alternating; "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    header = f"{'command':38s}" + "".join(f"{name + ' median':>15s}{name + ' min':>12s}" for name in trees)
    print(header + ("   after/before" if len(trees) == 2 else ""))
    for command in COMMANDS:
        label = " ".join(command)
        row = f"{label:38s}"
        medians = {}
        for name in trees:
            values = times[(label, name)]
            medians[name] = statistics.median(values)
            row += f"{medians[name]:15.2f}{min(values):12.2f}"
        if len(trees) == 2:
            row += f"{medians['after'] / medians['before']:15.2f}"
        print(row)
    print("list, first run (cold cache): " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in cold.items()))


if __name__ == "__main__":
    main()
