"""docs/rules.md is true: its YAML files and commands run, in order, in a fresh directory."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from timm_compound.scaling.schema import PartRule

DOC = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
BLOCK = re.compile(r"```(\w+)([^\n]*)\n(.*?)```", re.S)


def test_walkthrough_runs_in_a_fresh_directory(tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("TIMM_COMPOUND_RULES_PATH", None)
    ran, written = [], []
    for lang, info, body in BLOCK.findall(DOC.read_text()):
        if lang == "yaml":
            data = yaml.safe_load(body)
            target = re.search(r"file=(\S+)", info)
            if target:
                path = tmp_path / target.group(1)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(body)
                written.append(target.group(1))
            else:  # a fragment: the stem example
                PartRule.model_validate(data["stem"])
        elif lang == "console":
            for line in body.splitlines():
                command = line.removeprefix("$ ")
                result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                                        text=True, timeout=300)
                assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
                ran.append((command, result.stdout))
    assert written == ["my-rules/resnetv2.yaml", "my-rules/resnetv2-variants.yaml"]
    outputs = dict(ran)
    check = next(out for cmd, out in ran if cmd.startswith("timm-compound rules check"))
    assert "ok: phi=0 equals the base for resnetv2_50" in check
    assert outputs[next(c for c in outputs if "python -c" in c)].strip() == "(3, 256, 256)"
    assert "stages.*.blocks" in (tmp_path / "my-rules" / "resnetv2.yaml").read_text()
    assert '"$id": "registry.schema.json"' in (tmp_path / "my-rules" / "registry.schema.json").read_text()
