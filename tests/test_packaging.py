"""A wheel install carries rules/ and registry/: not only an editable checkout works."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_rules_and_registry_and_imports_from_them(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("timm_compound-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for folder in ("rules", "registry"):
        shipped = sorted(p.name for p in (ROOT / folder).iterdir() if p.suffix in (".yaml", ".json"))
        assert sorted(Path(n).name for n in names if n.startswith(f"timm_compound/data/{folder}/")) == shipped

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
    )
    probe = (
        "import timm, timm_compound, timm_compound.scaling.rulebook as r;"
        "print(r.shipped_dir('rules'));"
        "print(timm.create_model('resnet18_cs_phi1', device='meta').pretrained_cfg['input_size'])"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path, env=env
    )
    rules_dir, input_size = out.stdout.splitlines()
    assert rules_dir.startswith(str(target))
    assert input_size == "(3, 256, 256)"
