"""`depth: {fixed: "why"}` (and width, resolution): a dimension held on purpose, said by `rules show`,
`table` and the model card; a rule that both fixes and scales a dimension is refused, naming file and field."""

import pytest
import yaml
from typer.testing import CliRunner

import timm_compound as tc
from timm_compound.cli import app
from timm_compound.scaling.rulebook import RuleBook, load_rule, shipped_dir

runner = CliRunner()
VOVNET_REASON = "A second OSA block in a stage would add its input"


def _rule(tmp_path, name="vovnet.yaml", **changes):
    data = yaml.safe_load((shipped_dir("rules") / name).read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / f"edited_{name}"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "changes, field, message",
    [
        (
            dict(depth={"fixed": "one block per stage", "arg": "model_cfg.block_per_stage", "layout": "counts"}),
            "depth",
            "`fixed` says depth does not scale, but arg and layout are scaling policies for it: give one or the other",
        ),
        (dict(coefficients={"alpha": 1.2, "beta": 1.1, "gamma": 1.15}), "depth", f"depth is fixed ({VOVNET_REASON}"),
        (
            dict(stage_modules=None),
            "stage_modules",
            "depth is fixed: the plan counts its stages in the built base, so set stage_modules",
        ),
        (
            dict(depth={"arg": "model_cfg.block_per_stage"}),
            "depth",
            'depth needs `layout`, or `fixed: "why depth does not scale"`',
        ),
        (
            dict(resolution={"fixed": "the deployment takes 224 px", "divisor": 16}),
            "resolution",
            "`fixed` says resolution does not scale, but divisor is a scaling policy for it",
        ),
        (dict(strategy="depth"), "depth", f"strategy depth scales depth, which this rule fixes: {VOVNET_REASON}"),
        (dict(depth={"fixed": "a", "b": None}), "depth", "'b' looks like the rest of the reason, cut at a comma"),
    ],
)
def test_a_fixed_dimension_that_is_also_scaled_is_refused(tmp_path, changes, field, message):
    path = _rule(tmp_path, **changes)
    with pytest.raises(tc.RuleError) as caught:
        load_rule(path)
    assert (caught.value.source, caught.value.field) == (str(path), field)
    assert message in caught.value.reason, caught.value.reason


def test_a_scaled_stem_needs_a_width_that_scales(tmp_path):
    path = _rule(tmp_path, "nfnet.yaml", stem={"policy": "scale", "arg": "model_cfg.stem_chs"})
    with pytest.raises(tc.RuleError, match=r"stem: policy 'scale' widens with w, but width is fixed \(NFNet's"):
        load_rule(path)


def test_a_fixed_resolution_keeps_the_base_size(tmp_path):
    data = yaml.safe_load((shipped_dir("rules") / "resnet.yaml").read_text())
    data.pop("overrides")
    data.update(
        family="resnet_224",
        architectures=["resnet26"],
        coefficients={"alpha": 1.4, "beta": 1.2, "gamma": 1.0},
        resolution={"fixed": "the deployment takes 224 px inputs"},
    )
    path = tmp_path / "fixed_px.yaml"
    path.write_text(yaml.safe_dump(data))
    book = RuleBook.alone(load_rule(path), path)
    assert tc.plan("resnet26", 3, rules=book).resolution == 224
    with pytest.raises(
        tc.CompoundError,
        match="r=1.5 scales resolution, but rule .*fixed_px.yaml fixes it: the deployment takes 224 px inputs",
    ):
        tc.plan("resnet26", r=1.5, rules=book)


def test_rules_show_table_and_the_model_card_say_what_is_fixed_and_why(tmp_path):
    shown = runner.invoke(app, ["rules", "show", "ese_vovnet19b_dw"], env={"COLUMNS": "400"})
    assert shown.exit_code == 0, shown.output
    assert f"fixed: {VOVNET_REASON}" in shown.output
    assert "model_cfg.stage_out_chs (list), multiples of 8" in shown.output
    shown = runner.invoke(app, ["rules", "show", str(shipped_dir("rules") / "nfnet.yaml")], env={"COLUMNS": "400"})
    assert "fixed: NFNet's grouped 3x3 convs have 128 channels per group" in shown.output
    table = runner.invoke(app, ["table", "ese_vovnet19b_dw", "--phi", "0-1"], env={"COLUMNS": "400"})
    assert table.exit_code == 0 and f"depth does not scale (the rule fixes it): {VOVNET_REASON}" in table.output
    as_csv = runner.invoke(app, ["table", "ese_vovnet19b_dw", "--phi", "0-1", "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    assert as_csv.stdout.splitlines()[0].startswith("phi,") and "does not scale" not in as_csv.stdout
    assert f"depth does not scale (the rule fixes it): {VOVNET_REASON}" in as_csv.stderr
    folder = tc.save_to_dir(tc.scale("ese_vovnet19b_dw", phi=1, num_classes=3), tmp_path / "vovnet")
    card = (folder / "README.md").read_text()
    assert f"| depth does not scale | {VOVNET_REASON}" in card
