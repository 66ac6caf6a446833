"""`rules check` diagnoses (read-back of stem, head and stages; the smallest divisor that works), YAML
errors that say to quote, `rules validate` in any order, `rules coverage`, and stages built as trees
(DLA) or parallel branches (HRNet)."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import timm_compound as tc
from timm_compound.authoring import check
from timm_compound.authoring.check import check_rule
from timm_compound.authoring.coverage import coverage
from timm_compound.cli import app
from timm_compound.scaling.rulebook import RuleBook, load_rule, shipped_dir, shipped_rules

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def _resnet(tmp_path, arch="resnet18", **changes) -> Path:
    data = yaml.safe_load((shipped_dir("rules") / "resnet.yaml").read_text())
    data.pop("overrides")
    data.update(family="resnet_edit", architectures=[arch], **changes)
    path = tmp_path / "edit.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_stem_argument_the_constructor_ignores_fails_the_check(tmp_path):
    """timm's ResNet takes `stem_width` only for its deep stems: the plan would claim 72 channels."""
    result = check_rule(_resnet(tmp_path, stem={"policy": "scale", "arg": "stem_width"}), [0, 1])
    assert (
        "resnet18: phi=1: the plan's stem is 72 channels but the built conv1 has 64: the constructor does not "
        "take its width from stem_width" in result.failures
    )


def test_stage_widths_the_constructor_rounds_another_way_fail_the_check(tmp_path):
    """timm builds G16-EfficientNet's channels in steps of 16 (arch_def's 40 is a 48-wide stage): a rule
    that says steps of 8 plans widths the model does not have."""
    data = yaml.safe_load((shipped_dir("rules") / "efficientnet_g16.yaml").read_text())
    data["width"].update(divisor=8, min=8)
    path = tmp_path / "g16_by_8.yaml"
    path.write_text(yaml.safe_dump(data))
    failures = check_rule(path, [0]).failures
    assert failures[0].startswith(
        "efficientnet_b0_g16_evos: phi=0: the plan's stage widths [16, 24, 40, 80, 112, "
        "192, 320] build [16, 32, 48, 80, 112, 192, 320] output channels, not whole "
        "multiples of them: the constructor rounds widths another way"
    ), failures


def test_a_failing_build_names_the_rule_fields_and_the_smallest_width_divisor(tmp_path, monkeypatch):
    """BiT's GroupNorm has 32 groups on each bottleneck (a quarter of a stage's width): only stage widths
    in steps of 128 build."""
    data = yaml.safe_load((shipped_dir("rules") / "resnetv2.yaml").read_text())
    data.update(family="bit", architectures=["resnetv2_50x1_bit"])
    data.pop("inherit")
    path = tmp_path / "bit.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setattr(check, "SINGLE", ())
    result = check_rule(path, [1])
    assert result.failures == [
        f"resnetv2_50x1_bit: phi=1 at 256 px: build failed ({path}: depth.arg layers; width.arg channels; stem.arg "
        "stem_chs): ValueError: num_channels (72) must be divisible by num_groups (32); set width.divisor: 128 (the "
        "smallest that builds and runs it, though phi=0 then differs from the base)"
    ]


def _hrnet(tmp_path, **resolution) -> Path:
    path = tmp_path / "hrnet.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "family": "hrnet",
                "architectures": ["hrnet_w18_small"],
                "coefficients": {"alpha": 1.2, "beta": 1.1, "gamma": 1.15},
                "depth": {"arg": [f"model_cfg.stage{i}.num_blocks" for i in range(1, 5)], "layout": "fields"},
                "width": {"arg": [f"model_cfg.stage{i}.num_channels" for i in range(1, 5)], "layout": "fields"},
                "stem": {"policy": "fixed", "arg": "model_cfg.stem_width"},
                "head": {"policy": "fixed", "value": 2048, "note": "the head ends in a 2048-channel conv"},
                "resolution": {"divisor": 8, **resolution},
                "stage_modules": ["layer1", "stage2.*.branches.*", "stage3.*.branches.*", "stage4.*.branches.*"],
            }
        )
    )
    return path


def test_parallel_branches_scale_per_branch_and_a_failing_forward_names_the_resolution_divisor(tmp_path, monkeypatch):
    """HRNet's stages are parallel branches (a tuple of block counts and widths each): d and w round per
    branch, and every branch is a counted stage. It fuses branches at strides 4 to 32, so an input
    that is not a multiple of 32 fails in the forward pass."""
    path = _hrnet(tmp_path)
    book = RuleBook.alone(load_rule(path), path)
    scaled = tc.plan("hrnet_w18_small", 1, rules=book)
    assert scaled.structure_args["model_cfg.stage3.num_blocks"] == (3, 3, 3)  # ceil(2 x 1.2) per branch
    assert scaled.depths == [2, 3, 3, 3, 3, 3, 3, 3, 3, 3]  # layer1, then each branch
    assert scaled.widths == [128, 16, 32, 16, 32, 72, 16, 32, 72, 144]
    monkeypatch.setattr(check, "SINGLE", ())
    result = check_rule(path, [2])
    assert len(result.failures) == 1 and result.failures[0].startswith(
        "hrnet_w18_small: phi=2 at 296 px: forward failed: RuntimeError: "
    )
    assert result.failures[0].endswith("; set resolution.divisor: 32 (the smallest that builds and runs it)")
    assert check_rule(_hrnet(tmp_path, divisor=32), [2]).ok


def test_trees_deepen_a_whole_level_at_a_time(tmp_path):
    """DLA's last four stages are trees: a tree of level L holds 2**L blocks, counted at any depth."""
    path = tmp_path / "dla.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "family": "dla",
                "architectures": ["dla34"],
                "coefficients": {"alpha": 1.2, "beta": 1.1, "gamma": 1.15},
                "depth": {"arg": "levels.2:", "layout": "levels", "rounding": "round", "min": 2},
                "width": {"arg": "channels.2:", "layout": "list", "scale_with": ["channels.:2"]},
                "stem": {"policy": "derived", "note": "level0 is channels[0] wide"},
                "head": {"policy": "derived", "note": "the classifier reads the last stage"},
                "stage_modules": {
                    "path": ["level2", "level3", "level4", "level5"],
                    "blocks": ["DlaBasic"],
                    "nested": True,
                },
            }
        )
    )
    book = RuleBook.alone(load_rule(path), path)
    assert tc.plan("dla34", 0, rules=book).depths == [2, 4, 4, 2]
    assert tc.plan("dla34", 1, rules=book).depths == [2, 4, 4, 2]  # log2(2 x 1.2) = 1.26 rounds to level 1
    deeper = tc.plan("dla34", 2, rules=book)  # log2(2 x 1.44) = 1.53: level 2
    assert deeper.depths == [4, 8, 8, 4] and tc.stage_depths(tc.build(deeper), deeper) == [4, 8, 8, 4]
    result = check_rule(path, [0, 2])
    assert result.ok, result.failures


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "stem: {policy: derived, note: outputs dims[0] channels}",
            "line 2, column 43): expected ',' or '}', but got '['; in `stem: {policy: derived, note: outputs dims[0] "
            "channels}` the value of note holds a `[` or `: `, which YAML reads as syntax: quote the whole value "
            '(note: "...")',
        ),
        (
            "stem:\n  policy: derived\n  note: the ratio: 4 of it",
            "mapping values are not allowed here; in `note: the ratio: 4 of it` the value of note holds",
        ),
        (
            "depth: {arg: model_cfg.blocks[2].d, layout: counts}",
            "a path writes an index as .2, not [2] (model_cfg.blocks.2.d)",
        ),
    ],
)
def test_unquoted_brackets_and_colons_say_to_quote(tmp_path, line, message):
    path = tmp_path / "unquoted.yaml"
    path.write_text(f"family: x\n{line}\n")
    with pytest.raises(tc.RuleError) as caught:
        load_rule(path)
    assert str(caught.value).startswith(f"{path}: not valid YAML (") and message in str(caught.value)


def test_rules_validate_takes_files_in_any_order(tmp_path):
    """`rules validate my-rules/*.yaml` lists `resnet14t-variants.yaml` before `resnet14t.yaml` ('-' sorts
    before '.'). (resnet14t: an architecture no other test's user rule covers in this process.)"""
    rule = load_rule(shipped_dir("rules") / "resnet.yaml").model_dump(by_alias=True, exclude={"overrides"})
    rule.update(family="resnet14t_user", architectures=["resnet14t"], stem={"policy": "derived", "note": "deep stem"})
    (tmp_path / "resnet14t.yaml").write_text(yaml.safe_dump(rule))
    (tmp_path / "resnet14t-variants.yaml").write_text("variants:\n  - {base: resnet14t, phis: [0, 1]}\n")
    files = sorted(str(path) for path in tmp_path.glob("*.yaml"))
    assert files[0].endswith("resnet14t-variants.yaml")
    result = runner.invoke(app, ["rules", "validate", *files], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert result.output.index("valid registry") < result.output.index("valid rule")  # reported in the order given


def test_rules_coverage_counts_the_covered_modules_and_the_readme_states_it():
    found = coverage(shipped_rules())  # the shipped rules: other tests may load user rules into this process
    modules = {entry.module: entry for entry in found}
    assert "vision_transformer" not in modules and "swin_transformer" not in modules  # one conv: a patch embedding
    assert modules["resnet"].families == ("resnet",) and modules["resnest"].covered == ("resnest50d",)
    assert modules["byobnet"].covered == ("gernet_s", "mobileone_s0") and not modules["dpn"].is_covered
    covered = sum(entry.is_covered for entry in found)
    readme = (ROOT / "README.md").read_text()
    assert f"`timm-compound rules coverage`: {covered} of the {len(found)} timm modules" in readme
    cli = runner.invoke(app, ["rules", "coverage"], env={"COLUMNS": "200"})
    assert f"covered: {covered} of {len(found)} convolutional timm modules" in cli.output
