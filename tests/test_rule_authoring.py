"""Schema, scaffolding, `rules check`, and user rules loaded without touching the package."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import timm
import yaml
from typer.testing import CliRunner

import timm_compound as tc
from timm_compound.authoring.check import check_rule
from timm_compound.authoring.scaffold import scaffold
from timm_compound.cli import app
from timm_compound.scaling.rulebook import active_rules, json_schema, load_rule, shipped_dir

runner = CliRunner()
SHIPPED_RULES = sorted(shipped_dir("rules").glob("*.yaml"))
SHIPPED_REGISTRY = sorted(shipped_dir("registry").glob("*.yaml"))


@pytest.mark.parametrize("kind,folder", [("rule", "rules"), ("registry", "registry")])
def test_shipped_schema_files_are_current(kind, folder):
    shipped = json.loads((shipped_dir(folder) / f"{kind}.schema.json").read_text())
    assert shipped == json_schema(kind), f"regenerate with: timm-compound rules schema > {folder}/{kind}.schema.json"
    result = runner.invoke(app, ["rules", "schema"] + (["--registry"] if kind == "registry" else []))
    assert json.loads(result.stdout) == shipped


@pytest.mark.parametrize("path", SHIPPED_RULES + SHIPPED_REGISTRY, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_file_references_and_meets_its_schema(path):
    kind = "rule" if path.parent == shipped_dir("rules") else "registry"
    assert path.read_text().startswith(f"# yaml-language-server: $schema={kind}.schema.json\n")
    jsonschema.validate(yaml.safe_load(path.read_text()), json_schema(kind))


def test_schema_rejects_what_pydantic_rejects():
    data = yaml.safe_load(SHIPPED_RULES[0].read_text())
    data["width"]["divisr"] = 8
    with pytest.raises(jsonschema.ValidationError, match="divisr"):
        jsonschema.validate(data, json_schema("rule"))


@pytest.mark.parametrize(
    "arch,expect",
    [
        (
            "convnext_tiny",
            [
                "depth: {arg: depths, layout: counts",
                "width: {arg: dims, layout: list",
                "stage_modules: stages.*.blocks",
            ],
        ),
        (
            "densenet121",
            [
                "depth: {arg: block_config",
                "width: {arg: growth_rate, layout: scalar",
                "stage_modules: [features.denseblock1, features.denseblock2",
            ],
        ),
        (
            "efficientnet_b0",
            [
                "layout: block_args",
                "stem: {policy: scale, arg: stem_size}",
                "head: {policy: scale, arg: num_features}",
                "stage_modules: blocks",
            ],
        ),
        (
            "resnet50",
            [
                "depth: {arg: layers",
                "width: {arg: channels",
                "# CHECK: found `stem_width`",
                "stage_modules: [layer1, layer2, layer3, layer4]",
            ],
        ),
    ],
)
def test_scaffold_finds_depths_widths_and_stages(arch, expect, tmp_path):
    text = scaffold(arch)
    for snippet in expect:
        assert snippet in text
    path = tmp_path / f"{arch}.yaml"
    path.write_text(text)
    assert tc.load_rule(path).architectures == [arch]
    assert check_rule(path, [0]).ok


def test_scaffold_marks_what_it_cannot_decide(tmp_path):
    text = scaffold("inception_v3")  # hand-written stages: no depth/width arguments to find
    assert "# CHECK: no list-of-int constructor argument found for the stage depths" in text
    assert "depth: {arg: TODO" in text


@pytest.mark.parametrize(
    "arch,expect",
    [
        (
            "ghostnet_100",
            [
                "depth: {arg: cfgs, layout: rows, stride_column: 4",
                "width: {arg: width, layout: multiplier}",
                "stage_modules: [blocks.0, blocks.1,",
                "family: ghostnet_100   # family `ghostnet` is the shipped",
                "replaces: ghostnet   # CHECK",
            ],
        ),
        (
            "vgg11_bn",
            [
                "depth: {arg: model_cfg, layout: separated, marker: M",
                "stage_modules: {path: features, split_at: MaxPool2d, blocks: [Conv2d]}",
            ],
        ),
        (
            "regnetx_002",
            [
                "depth: {arg: model_cfg.depth, layout: fields",
                "width: {arg: [model_cfg.w0], layout: fields",
                "stem: {policy: scale, arg: model_cfg.stem_width}",
                "stage_modules: s[0-9]*",
                "# CHECK: model_cfg is a RegNetCfg (depth=13, w0=24, wa=36.44",
            ],
        ),
        (
            "rexnet_100",
            [
                "depth: {arg: depth_mult, layout: multiplier}",
                "width: {arg: width_mult, layout: multiplier}",
                "stage_modules: TODO   # CHECK",
            ],
        ),
        (
            "efficientformer_l1",
            [
                "stage_modules: {path: stages.*.blocks, skip: [Flat]}",
                "resolution: {divisor: 8, rounding: round, max: 224}",
                "# timm's pretrained_cfg has fixed_input_size: efficientformer_l1 accepts only 224 px",
            ],
        ),
    ],
)
def test_scaffold_finds_the_v2_layouts(arch, expect, tmp_path):
    text = scaffold(arch)
    for snippet in expect:
        assert snippet in text, text
    path = tmp_path / f"{arch}.yaml"
    path.write_text(text)
    assert tc.load_rule(path).architectures == [arch]


def test_scaffold_never_proposes_a_shipped_family():
    shipped = active_rules().families()
    for family, (rule, _) in shipped.items():
        proposed = yaml.safe_load(scaffold(rule.architectures[0]))["family"]
        assert proposed not in shipped, (family, proposed)


def test_scaffold_proposes_the_norm_sections_the_shipped_rules_have(tmp_path):
    """How a model uses its norms is found by running it: the proposals equal the hand-written rules."""
    proposed = {}
    for arch in ("resnet18", "resnet50", "efficientnet_b0", "regnety_008"):
        path = tmp_path / f"{arch}.yaml"
        path.write_text(scaffold(arch))
        proposed[arch] = load_rule(path).norm
    shipped = {
        name: load_rule(shipped_dir("rules") / f"{name}.yaml").norm for name in ("resnet", "efficientnet", "regnet")
    }
    for arch, file in [("resnet18", "resnet"), ("efficientnet_b0", "efficientnet"), ("regnety_008", "regnet")]:
        got, want = proposed[arch], shipped[file]
        assert (got.arg, got.takes, got.group_size, got.fallback) == (want.arg, want.takes, 16, "divisor"), arch
    # ResNet's activations: bn2 of a BasicBlock and bn3 of a Bottleneck feed the residual sum (x += shortcut),
    # so only the pairs the shipped rule lists are found, between them all of them
    assert proposed["resnet18"].activations == {"ResNet": [("bn1", "act1")], "BasicBlock": [("bn1", "act1")]}
    assert {**proposed["resnet18"].activations, **proposed["resnet50"].activations} == shipped["resnet"].activations
    assert proposed["efficientnet_b0"].activations == {}  # norm-act layers carry their activation


def test_scaffold_says_why_it_proposes_no_norm_or_no_pairs():
    assert "vgg11 builds no batch norm layers (its norm_layer is unset)" in scaffold("vgg11")
    assert "norm:" not in yaml.safe_load(scaffold("vgg11"))
    text = scaffold("vgg11_bn")  # its norm -> ReLU pairs are numbered children of nn.Sequential
    assert "8 norm(s) feeding an activation sit in an nn.Sequential (features.1, ...)" in text
    assert yaml.safe_load(text)["norm"] == {
        "arg": "norm_layer",
        "takes": "norm",
        "group_size": 16,
        "fallback": "divisor",
    }


@pytest.mark.parametrize("arch", ["vgg11_bn", "ghostnet_100"])
def test_scaffolds_of_the_v2_layouts_rebuild_the_base(arch, tmp_path):
    path = tmp_path / f"{arch}.yaml"
    path.write_text(scaffold(arch))
    result = check_rule(path, [0])
    assert result.ok, result.failures
    assert not any("stage_modules" in note for note in result.notes)


def test_rules_check_counts_blocks_past_non_block_children_and_holds_a_fixed_input_size(tmp_path):
    """EfficientFormer: a `Flat` sits among the last stage's blocks, and only 224 px inputs fit."""
    path = tmp_path / "efficientformer.yaml"
    path.write_text(scaffold("efficientformer_l1"))
    result = check_rule(path, [0, 1])
    assert result.ok, result.failures
    assert result.rows[0].plan.depths == [3, 2, 6, 4]
    at_one = next(row for row in result.rows if row.phi == 1)
    assert at_one.plan.resolution == 224 and at_one.plan.resolution_source == "capped"
    assert at_one.ideal == pytest.approx(1.2 * 1.1**2)  # d * w^2, r held at the cap
    assert any(
        "resolution stays at 224 px (resolution.max): timm's pretrained_cfg has fixed_input_size" in note
        for note in result.notes
    )

    path.write_text(path.read_text().replace(", max: 224}", "}"))
    result = check_rule(path, [1])
    assert not result.ok
    assert result.failures[0].startswith("efficientformer_l1: phi=1 at 256 px: forward failed: ")
    assert "set `resolution.max: 224`" in " ".join(result.notes)
    cli = runner.invoke(app, ["rules", "check", str(path), "--phi", "1"], env={"COLUMNS": "200"})
    assert cli.exit_code == 1 and "forward failed" in cli.output and "Traceback" not in cli.output


def test_rules_check_says_when_it_could_not_count_blocks(tmp_path):
    data = yaml.safe_load((shipped_dir("rules") / "densenet.yaml").read_text())
    data.pop("stage_modules")
    path = tmp_path / "uncounted.yaml"
    path.write_text(yaml.safe_dump(data))
    result = check_rule(path, [0])
    assert result.ok and "the rule has no stage_modules: blocks per stage were not counted" in result.notes[0]
    cli = runner.invoke(app, ["rules", "check", str(path), "--phi", "0"], env={"COLUMNS": "200"})
    assert "ok: phi=0 equals the base for densenet121 (blocks per stage not checked: no stage_modules)" in cli.output


def test_rules_new_cli(tmp_path):
    out = tmp_path / "rule.yaml"
    result = runner.invoke(app, ["rules", "new", "convnext_nano", "-o", str(out)])
    assert result.exit_code == 0 and out.exists()
    result = runner.invoke(app, ["rules", "new", "convnext_huge_not_real"])
    assert result.exit_code == 1 and "unknown timm architecture 'convnext_huge_not_real'" in result.output


@pytest.mark.parametrize(
    "rule",
    [
        "convnext.yaml",
        "densenet.yaml",
        "mobilenetv3.yaml",
        "ghostnet.yaml",
        "vgg.yaml",
        "regnet.yaml",
        "resnetv2.yaml",
        "efficientnetv2.yaml",
        "efficientnet_g16.yaml",
    ],
)
def test_rules_check_yaml_only_families(rule):
    result = check_rule(shipped_dir("rules") / rule, [0, 1])
    assert result.ok, result.failures
    assert {row.strategy for row in result.rows} == {"compound", "depth", "width", "resolution"}
    at_one = [row for row in result.rows if row.phi == 1 and row.strategy == "compound"]
    assert at_one and all(row.params_ratio > 1.05 and row.macs_ratio > 1.5 for row in at_one)
    if rule not in ("convnext.yaml", "densenet.yaml", "mobilenetv3.yaml"):  # the v2 families track the ideal
        assert not any(row.flag for row in result.rows if row.strategy == "compound")
    assert all(row.ideal == pytest.approx(1.2 * 1.1**2 * 1.15**2) for row in at_one)
    assert result.notes == []


def test_rules_check_cli_prints_ratios():
    result = runner.invoke(
        app, ["rules", "check", str(shipped_dir("rules") / "densenet.yaml"), "--phi", "0-1"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "densenet121" in line and "│ 1 " in line)
    assert "1.92" in row  # the ideal ratio at phi=1
    assert "ok: phi=0 equals the base for densenet121" in result.output


def test_rules_check_fails_when_phi_zero_is_not_the_base(tmp_path):
    data = yaml.safe_load((shipped_dir("rules") / "convnext.yaml").read_text())
    data["width"]["min"] = 128  # lifts convnext_atto's 40/80-wide stages even at phi=0
    path = tmp_path / "wide.yaml"
    path.write_text(yaml.safe_dump(data))
    result = check_rule(path, [0])
    assert not result.ok
    assert "convnext_atto: phi=0 differs from timm's convnext_atto" in result.failures[0]
    cli = runner.invoke(app, ["rules", "check", str(path), "--phi", "0"])
    assert cli.exit_code == 1


def _user_folder(tmp_path: Path, arch: str = "resnet26", phis=(0, 1), name: str = "my_{base}_phi{phi}") -> Path:
    folder = tmp_path / "user"
    folder.mkdir(exist_ok=True)
    rule = yaml.safe_load((shipped_dir("rules") / "resnet.yaml").read_text())
    rule.pop("overrides")  # it names resnext50_32x4d, which this user rule does not cover
    rule.update(family="user_resnet", architectures=[arch])
    (folder / "rule.yaml").write_text(yaml.safe_dump(rule))
    (folder / "variants.yaml").write_text(
        yaml.safe_dump({"variants": [{"base": arch, "phis": list(phis), "name": name}]})
    )
    return folder


def test_load_rules_registers_user_variants(tmp_path):
    variants = tc.load_rules(_user_folder(tmp_path))
    assert [v.name for v in variants] == ["my_resnet26_phi0", "my_resnet26_phi1"]
    model = timm.create_model("my_resnet26_phi1", device="meta")
    assert model.compound_plan.depths == [3, 3, 3, 3] and model.compound_plan.family == "user_resnet"
    assert tc.plan("resnet26", phi=2).rule.family == "user_resnet"


def test_user_rule_claiming_a_shipped_architecture_is_refused_and_changes_nothing(tmp_path):
    before = dict(active_rules().rules)
    folder = _user_folder(tmp_path, arch="resnet18", name="clash_{base}_{phi}")
    with pytest.raises(
        tc.RuleError, match=r"rule.yaml: architectures.0: 'resnet18' is already covered by the rule in .*resnet.yaml"
    ):
        tc.load_rules(folder)
    assert active_rules().rules == before
    assert not timm.is_model("clash_resnet18_0")


def test_two_user_rules_claiming_one_architecture(tmp_path):
    folder = _user_folder(tmp_path, arch="resnet152", name="x_{base}_{phi}")
    other = tmp_path / "other"
    other.mkdir()
    (other / "again.yaml").write_text((folder / "rule.yaml").read_text())
    with pytest.raises(
        tc.RuleError, match=r"again.yaml: architectures.0: 'resnet152' is already covered by the rule in .*rule.yaml"
    ):
        tc.load_rules(folder, other)
    assert not timm.is_model("x_resnet152_0")


def test_user_rule_with_a_missing_constructor_argument(tmp_path):
    rule = yaml.safe_load((shipped_dir("rules") / "resnet.yaml").read_text())
    rule.pop("overrides")
    rule.update(architectures=["resnet200"], depth={**rule["depth"], "arg": "blocks"})
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(rule))
    with pytest.raises(tc.RuleError, match="broken.yaml: depth.arg: ResNet has no constructor argument 'blocks'"):
        tc.load_rules(path)
    assert "resnet200" not in active_rules().rules


def test_rules_path_environment_variable_in_a_fresh_process(tmp_path):
    folder = _user_folder(tmp_path, arch="resnet152", name="env_{base}_phi{phi}")
    env = dict(os.environ, TIMM_COMPOUND_RULES_PATH=str(folder))
    code = "import timm, timm_compound; m = timm.create_model('env_resnet152_phi1', device='meta'); print(m.compound_plan.depths)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[4, 10, 44, 4]"

    (folder / "variants.yaml").write_text("variants:\n  - {base: resnet152, phis: [0], name: resnet50}\n")
    out = subprocess.run([sys.executable, "-c", "import timm_compound"], env=env, capture_output=True, text=True)
    assert out.returncode == 1
    assert (
        "variants.0.name: 'resnet50' collides with an existing timm model name (loaded from TIMM_COMPOUND_RULES_PATH)"
        in out.stderr
    )


def test_rules_check_gives_negative_phis_a_ratio_to_the_base():
    result = check_rule(shipped_dir("rules") / "mobilenetv1.yaml", [-1, 0])
    below = next(row for row in result.rows if row.phi == -1)
    assert result.ok and 0.4 < below.macs_ratio < 0.7 and below.params_ratio < 1


FIXED_RESOLUTION = {
    "family": "resnet_fixed_resolution",
    "replaces": "resnet",
    "architectures": ["resnet18"],
    "coefficients": {"alpha": 1.4, "beta": 1.2, "gamma": 1.0},
    "depth": {"arg": "layers", "layout": "counts"},
    "width": {"arg": "channels", "layout": "list"},
    "stem": {"policy": "fixed", "value": 64, "note": "hard-coded"},
    "head": {"policy": "derived", "note": "last stage"},
    "stage_modules": ["layer1", "layer2", "layer3", "layer4"],
}


def _rule_file(tmp_path: Path, name: str = "fixed.yaml", **changes) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({**FIXED_RESOLUTION, **changes}))
    return path


def test_a_user_rule_replaces_a_shipped_one_for_the_architectures_it_lists(tmp_path):
    from timm_compound.registry.register import refresh
    from timm_compound.scaling.rulebook import set_active_rules

    before = active_rules()
    assert timm.models.get_pretrained_cfg("resnet18_cs_phi2").input_size == (3, 296, 296)
    try:
        assert tc.load_rules(_rule_file(tmp_path)) == []
        model = timm.create_model("resnet18_cs_phi2", device="meta")
        plan = model.compound_plan
        assert (plan.family, plan.rule_file, plan.rule.replaces) == ("resnet_fixed_resolution", "fixed.yaml", "resnet")
        assert (plan.coefficients.alpha, plan.coefficients.beta, plan.coefficients.gamma) == (1.4, 1.2, 1.0)
        assert plan.depths == [4, 4, 4, 4] and plan.widths == [96, 184, 368, 736]  # 1.96 d, 1.44 w
        assert timm.data.resolve_model_data_config(model)["input_size"] == (3, 224, 224)
        assert timm.models.get_pretrained_cfg("resnet18_cs_phi2").input_size == (3, 224, 224)
        assert tc.plan("resnet34", phi=2).family == "resnet"  # the shipped rule keeps the others
    finally:
        refresh(active_rules(), before)
        set_active_rules(before)
    assert timm.models.get_pretrained_cfg("resnet18_cs_phi2").input_size == (3, 296, 296)
    assert timm.create_model("resnet18_cs_phi2", device="meta").compound_plan.rule_file == "resnet.yaml"


@pytest.mark.parametrize(
    "changes, field, message",
    [
        (dict(replaces="resnett"), "replaces", "no loaded rule has family 'resnett' \\(loaded: convnext, densenet, "),
        (dict(replaces="convnext"), "architectures.0", "'resnet18' is already covered by the rule in .*resnet.yaml$"),
        (
            dict(replaces="convnext", architectures=["resnet34d"]),
            "replaces",
            r"the 'convnext' rule \(.*convnext.yaml\) covers none of \['resnet34d'\]: there is nothing to replace",
        ),
        (dict(architectures=["resnet18", "convnext_atto"]), "architectures.1", "'convnext_atto' is already covered"),
    ],
)
def test_replacing_names_what_is_wrong(tmp_path, changes, field, message):
    before = dict(active_rules().rules)
    with pytest.raises(tc.RuleError, match=message) as caught:
        tc.load_rules(_rule_file(tmp_path, **changes))
    assert caught.value.field == field
    assert active_rules().rules == before


def test_rules_validate_reports_a_claim_on_a_shipped_architecture(tmp_path):
    claiming = _rule_file(tmp_path, "claiming.yaml", replaces=None)
    result = runner.invoke(app, ["rules", "validate", str(claiming)], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert (
        "architectures.0: 'resnet18' is already covered by the rule in "
        f"{shipped_dir('rules') / 'resnet.yaml'}; to use this rule instead, give it `replaces: resnet`"
    ) in result.output.replace("\n", "")
    result = runner.invoke(app, ["rules", "validate", str(_rule_file(tmp_path))])
    assert result.exit_code == 0 and f"valid rule: {tmp_path / 'fixed.yaml'}" in result.output.replace("\n", "")
