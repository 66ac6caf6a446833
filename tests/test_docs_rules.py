"""docs/rules.md is true: its YAML files and commands run, in order, in a fresh directory, and its
YAML fragments are valid parts of a rule."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from pydantic import TypeAdapter

from timm_compound.scaling.schema import DepthRule, PartRule, Rule, Strategy, WidthRule

DOC = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
BLOCK = re.compile(r"```(\w+)([^\n]*)\n(.*?)```", re.S)
FRAGMENT_PARTS = {
    "depth": DepthRule,
    "width": WidthRule,
    "stem": PartRule,
    "head": PartRule,
    "strategy": Strategy,
    "stage_modules": Rule.model_fields["stage_modules"].annotation,
}


def test_walkthrough_runs_in_a_fresh_directory(tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("TIMM_COMPOUND_RULES_PATH", None)
    ran, written, fragments = [], [], 0
    for lang, info, body in BLOCK.findall(DOC.read_text()):
        if lang == "yaml":
            data = yaml.safe_load(body)
            target = re.search(r"file=(\S+)", info)
            if target:
                path = tmp_path / target.group(1)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(body)
                written.append(target.group(1))
            else:  # a fragment: each part must validate as that part of a rule
                assert set(data) <= set(FRAGMENT_PARTS), sorted(data)
                for key, value in data.items():
                    TypeAdapter(FRAGMENT_PARTS[key]).validate_python(value)
                fragments += 1
        elif lang == "console":
            for line in body.splitlines():
                command = line.removeprefix("$ ")
                result = subprocess.run(
                    ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
                )
                assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
                ran.append((command, result.stdout))
    assert written == [
        "trees/dla.yaml",
        "branches/hrnet.yaml",
        "my-rules/rexnet.yaml",
        "my-rules/rexnet-variants.yaml",
        "fixed-resolution/resnet18.yaml",
    ]
    assert fragments >= 13
    outputs = dict(ran)
    scaffolded = next(out for cmd, out in ran if cmd.startswith("timm-compound rules new"))
    assert "wrote my-rules/rexnet.yaml" in scaffolded
    check = next(out for cmd, out in ran if cmd.startswith("timm-compound rules check my-rules/rexnet"))
    assert "ok: phi=0 equals the base for rexnet_100" in check and "not checked" not in check
    assert outputs[next(c for c in outputs if "rexnet_100_cs_phi1')" in c)].strip() == "(3, 256, 256)"
    assert outputs[next(c for c in outputs if "resnet18_cs_phi2" in c)].strip() == "(3, 224, 224) resnet18.yaml 1.4"
    assert '"$id": "registry.schema.json"' in (tmp_path / "my-rules" / "registry.schema.json").read_text()
    # rules v3: the tree deepens a whole level, the branches check clean, the fixed depth is said with its reason
    assert "ok: phi=0 equals the base for dla34" in next(out for cmd, out in ran if "trees/dla.yaml" in cmd)
    assert "ok: phi=0 equals the base for hrnet_w18_small" in next(out for cmd, out in ran if "branches/hrnet" in cmd)
    assert "fixed: A second OSA block in a stage" in " ".join(
        outputs["timm-compound rules show ese_vovnet19b_dw"].split()
    )
    assert "Row(kernel=3, out_chs=24, stride=1)" in next(out for cmd, out in ran if "namedtuple" in cmd)
    validated = next(out for cmd, out in ran if cmd.startswith("timm-compound rules validate my-rules/*.yaml"))
    assert (
        "valid registry: my-rules/rexnet-variants.yaml" in validated and "valid rule: my-rules/rexnet.yaml" in validated
    )


def test_the_shipped_rules_quoted_in_the_doc_are_the_shipped_ones():
    """The layout sections quote parts of rules/*.yaml: each quote must equal the shipped file."""
    shipped = {
        path.name: yaml.safe_load(path.read_text())
        for path in (Path(__file__).resolve().parent.parent / "rules").glob("*.yaml")
    }
    fragments = [
        yaml.safe_load(body)
        for lang, info, body in BLOCK.findall(DOC.read_text())
        if lang == "yaml" and "file=" not in info
    ]
    quoted = {
        name
        for fragment in fragments
        for name, rule in shipped.items()
        if all(rule.get(key) == value for key, value in fragment.items())
    }
    assert {
        "efficientnetv2.yaml",
        "vgg.yaml",
        "regnet.yaml",
        "gernet.yaml",
        "vovnet.yaml",
        "selecsls.yaml",
        "xception.yaml",
        "mobileone.yaml",
    } <= quoted
