"""The package's layering is a contract checked by import-linter (pyproject's [tool.importlinter]):
cli > registry > hub | authoring > cost > scaling, no cycles inside a subpackage, nothing imports
the package root. A cycle anywhere fails `make test` with a message naming the import."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True)


def test_the_layer_contracts_hold():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, bad_import, messages",
    [
        # a lower layer importing a higher one, hidden inside a function
        (
            "scaling/rounding.py",
            "def _sneaky():\n    from timm_compound.cli import app\n",
            ["timm_compound.scaling.rounding -> timm_compound.cli"],
        ),
        # a cycle between two modules of one subpackage (config imports publish, publish imports config)
        (
            "hub/config.py",
            "from timm_compound.hub import publish\n",
            ["No cycles are allowed in timm_compound.hub", ".config -> .publish"],
        ),
    ],
)
def test_an_added_cycle_breaks_the_contract_and_names_the_import(tmp_path, module, bad_import, messages):
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "timm_compound", copy / "timm_compound", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    with open(copy / "timm_compound" / module, "a") as handle:
        handle.write("\n\n" + bad_import)
    result = _lint(copy, pythonpath=copy)
    assert result.returncode != 0
    for message in messages:
        assert message in result.stdout, result.stdout


def test_no_module_imports_the_package_root():
    """`import timm_compound` registers everything: a submodule importing it would close a cycle
    that the layer contract cannot see (the root is in no layer)."""
    import grimp

    graph = grimp.build_graph("timm_compound", cache_dir=None)
    importers = graph.find_modules_that_directly_import("timm_compound")
    assert importers == set()
