"""The v2 layouts (rows, separated, multiplier, fields), the families that need them, and a scaler
that stays free of family names."""

import ast
from pathlib import Path

import pytest
import timm
import torch
import yaml
from conftest import param_count

import timm_compound as tc
from timm_compound.scaling.layouts.rows import Rows
from timm_compound.scaling.layouts.separated import Separated
from timm_compound.scaling.rulebook import RuleBook, load_rule, shipped_dir
from timm_compound.scaling.schema import DepthRule, WidthRule
from timm_compound.scaling.stages import stage_blocks

ROOT = Path(__file__).resolve().parent.parent
SCALING = ROOT / "timm_compound" / "scaling"
LAYOUT_BASES = [
    "ghostnet_100",
    "vgg11_bn",
    "vgg16_bn",
    "regnety_008",
    "regnetx_016",
    "resnetv2_50",
    "tf_efficientnetv2_b0",
    "efficientnet_b0_g16_evos",
]
FAMILY_NAMES = (
    "resnet",
    "resnext",
    "efficientnet",
    "mobilenet",
    "mnasnet",
    "ghostnet",
    "vgg",
    "regnet",
    "rexnet",
    "convnext",
    "densenet",
    "edgenext",
    "efficientformer",
    "vit",
    "g16",
)
ERROR_CALLS = {"ValueError", "RuleError", "CompoundError", "KeyError", "RuntimeError", "error", "_fail"}


# --- the scaler knows no family --------------------------------------------------------------------


def _code_words(source: str) -> list[str]:
    """Identifiers and string literals that code acts on: not comments, docstrings, field
    descriptions or the text of error messages."""
    tree = ast.parse(source)
    prose: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            prose.add(id(body[0].value))
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            texts = node.args if name in ERROR_CALLS else []
            texts += [kw.value for kw in node.keywords if kw.arg == "description"]
            for text in texts:
                prose.update(id(sub) for sub in ast.walk(text))
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            words.append(node.value)
        elif isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            words.append(node.name)
        elif isinstance(node, ast.arg):
            words.append(node.arg)
    return words


def _family_words(source: str) -> list[str]:
    return [word for word in _code_words(source) if any(name in word.lower() for name in FAMILY_NAMES)]


def test_the_family_name_check_can_fail():
    planted = 'def read(rule):\n    """Reads a ResNet."""\n    if rule.family == "vgg":\n        return resnet_layers\n'
    assert _family_words(planted) == ["vgg", "resnet_layers"]


@pytest.mark.parametrize("path", sorted(SCALING.rglob("*.py")), ids=lambda p: str(p.relative_to(SCALING)))
def test_the_scaling_code_names_no_family(path):
    assert _family_words(path.read_text()) == [], "family names belong in rules/*.yaml, not in the scaler"


# --- every new family: phi=0 is the base, phi=1..3 build and run at their own resolution -----------


def _stage_channels(model, plan, size) -> tuple[list[int], list[int]]:
    """Blocks per stage and the channels each stage's last block outputs, from one meta forward."""
    stages = stage_blocks(model, plan.rule.stage_modules)
    seen = {}
    hooks = [
        blocks[-1][1].register_forward_hook(lambda m, i, out, k=k: seen.__setitem__(k, out.shape[1]))
        for k, blocks in enumerate(stages)
    ]
    out = model(torch.empty(1, 3, size, size, device="meta"))
    for hook in hooks:
        hook.remove()
    assert out.shape == (1, 1000)
    return [len(blocks) for blocks in stages], [seen[k] for k in range(len(stages))]


@pytest.mark.parametrize("base", LAYOUT_BASES)
def test_new_family_variants(base, meta):
    reference, phi0 = timm.create_model(base), timm.create_model(f"{base}_cs_phi0")
    assert param_count(phi0) == param_count(reference)
    assert {k: v.shape for k, v in phi0.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    params = [param_count(phi0)]
    for phi in (1, 2, 3):
        model = timm.create_model(f"{base}_cs_phi{phi}").eval()
        plan = model.compound_plan
        size = timm.data.resolve_model_data_config(model)["input_size"]
        assert size == (3, plan.resolution, plan.resolution) and plan.resolution > plan.base_resolution
        assert _stage_channels(model, plan, plan.resolution) == (plan.depths, plan.widths)
        params.append(param_count(model))
    assert params == sorted(params) and params[0] < params[1]
    shrunk = tc.plan(base, phi=-1)
    model = tc.build(shrunk).eval()
    assert _stage_channels(model, shrunk, shrunk.resolution) == (shrunk.depths, shrunk.widths)


# --- rows ----------------------------------------------------------------------------------------

GHOST_STAGE = [
    [3, 200, 80, 0, 1],
    [3, 184, 80, 0, 1],
    [3, 184, 80, 0, 1],
    [3, 480, 112, 0.25, 1],
    [3, 672, 112, 0.25, 1],
]


def test_rows_add_the_last_row_with_stride_one_and_drop_from_the_front():
    depth = DepthRule(arg="cfgs", layout="rows", stride_column=4)
    strided = [[5, 672, 160, 0.25, 2], [5, 960, 160, 0, 1]]
    assert Rows().write_depths([strided], depth, [4]) == [strided + [[5, 960, 160, 0, 1]] * 2]
    assert Rows().write_depths([strided], depth, [1]) == [[[5, 960, 160, 0, 2]]]  # keeps the stride
    assert Rows().write_depths([GHOST_STAGE], depth, [2]) == [GHOST_STAGE[3:]]  # keeps the stage's width


def test_rows_scale_the_width_and_its_columns_by_w():
    width = WidthRule(arg="cfgs", layout="rows", column=2, scale_columns=[1], divisor=8)
    assert Rows().read_widths([GHOST_STAGE], width, None) == [112]
    (stage,) = Rows().write_widths([GHOST_STAGE], width, [224], [112], w=2.0)
    assert [row[2] for row in stage] == [160, 160, 160, 224, 224]
    assert [row[1] for row in stage] == [400, 368, 368, 960, 1344]
    assert [row[3] for row in stage] == [0, 0, 0, 0.25, 0.25]  # other columns untouched
    fixed = WidthRule(arg="cfgs", layout="rows", column=2, scale_columns=[1], fixed_stages=[0])
    assert Rows().write_widths([GHOST_STAGE], fixed, [112], [112], w=2.0) == [GHOST_STAGE]


def _ghostnet_rows_rule(tmp_path, **width) -> Path:
    """The docs' GhostNet rule that keeps the width in the rows (column 2) instead of `width`."""
    data = yaml.safe_load((shipped_dir("rules") / "ghostnet.yaml").read_text())
    data.update(
        family="ghostnet_rows",
        width={"arg": "cfgs", "layout": "rows", "column": 2, "scale_columns": [1], "divisor": 4, **width},
        stem={"policy": "fixed", "value": 16, "note": "GhostNet hard-codes its stem to 16 x width."},
    )
    path = tmp_path / "ghostnet_rows.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_rows_rule_for_ghostnet_builds_as_planned(tmp_path, meta):
    path = _ghostnet_rows_rule(tmp_path)
    book = RuleBook.alone(load_rule(path), path)
    assert param_count(tc.build(tc.plan("ghostnet_100", 0, rules=book))) == param_count(
        timm.create_model("ghostnet_100")
    )
    plan = tc.plan("ghostnet_100", 2, rules=book)
    assert plan.structure_args == {} and plan.stem == 16
    assert plan.widths == [20, 28, 28, 48, 48, 96, 136, 192, 192]  # make_divisible(c * 1.21, 4)
    model = tc.build(plan).eval()
    assert _stage_channels(model, plan, plan.resolution) == (plan.depths, plan.widths)
    # GhostNet's own width=1.3 also widens the stem: the rows rule differs from ghostnet_130 only there
    rows_130 = {k: v.shape for k, v in tc.build(tc.plan("ghostnet_100", w=1.3, rules=book)).state_dict().items()}
    timm_130 = {k: v.shape for k, v in timm.create_model("ghostnet_130").state_dict().items()}
    differ = {
        ".".join(k.split(".")[: 3 if k.startswith("blocks") else 1])
        for k in rows_130.keys() | timm_130.keys()
        if rows_130.get(k) != timm_130.get(k)
    }
    assert differ == {"conv_stem", "bn1", "blocks.0.0"}  # the stem and the block reading it


# --- separated -----------------------------------------------------------------------------------


def test_separated_reads_and_writes_runs_between_markers():
    vgg16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    depth = DepthRule(arg="model_cfg", layout="separated", marker="M")
    width = WidthRule(arg="model_cfg", layout="separated", marker="M")
    assert Separated().read_depths(vgg16, depth, None) == ([2, 2, 3, 3, 3], [1] * 5)
    assert Separated().read_widths(vgg16, width, None) == [64, 128, 256, 512, 512]
    deeper = Separated().write_depths(vgg16, depth, [1, 3, 3, 3, 2])
    assert Separated().write_widths(deeper, width, [72, 144, 280, 560, 560], []) == [
        72,
        "M",
        144,
        144,
        144,
        "M",
        280,
        280,
        280,
        "M",
        560,
        560,
        560,
        "M",
        560,
        560,
        "M",
    ]


def test_cfg_and_model_cfg_name_the_same_argument(tmp_path):
    """timm passes VGG's list as build_model_with_cfg(model_cfg=...), which VGG receives as `cfg`."""
    data = yaml.safe_load((shipped_dir("rules") / "vgg.yaml").read_text())
    for part in ("depth", "width"):
        data[part]["arg"] = "cfg"
    path = tmp_path / "vgg_cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    book = RuleBook.alone(load_rule(path), path)
    assert tc.plan("vgg16_bn", 2, rules=book).depths == tc.plan("vgg16_bn", 2).depths == [3, 3, 4, 4, 4]
    assert load_rule(path).structural_args() == {"cfg"}


# --- multiplier ----------------------------------------------------------------------------------

REXNET = """
family: rexnet
architectures: [rexnet_100]
coefficients: {alpha: 1.2, beta: 1.1, gamma: 1.15}
depth: {arg: depth_mult, layout: multiplier}
width: {arg: width_mult, layout: multiplier}
stem: {policy: derived, note: ReXNet computes its stem from width_mult}
head: {policy: derived, note: the last 1x1 conv is final_chs times width_mult}
stage_modules: {path: [features], skip: [ConvNormAct]}
"""


def _book(tmp_path, text: str, name: str = "rule.yaml") -> RuleBook:
    path = tmp_path / name
    path.write_text(text)
    return RuleBook.alone(load_rule(path), path)


def test_multiplier_plans_read_the_stages_back_from_a_build(tmp_path, meta):
    book = _book(tmp_path, REXNET)
    base, scaled = tc.plan("rexnet_100", 0, rules=book), tc.plan("rexnet_100", 2, rules=book)
    assert base.depths == base.base_depths == [16] and base.widths == [185]
    assert scaled.structure_args == {"depth_mult": 1.44, "width_mult": 1.21}
    assert scaled.depths == [26] and scaled.widths == [229]
    assert scaled.realised.depth == pytest.approx(26 / 16)
    model = tc.build(scaled)
    assert tc.stage_depths(model, scaled) == [26]
    assert tc.plan("rexnet_100", 2, rules=book) == scaled  # read back once, cached


@pytest.mark.parametrize("name, w", [("rexnet_130", 1.3), ("rexnet_150", 1.5)])
def test_multiplier_rule_reproduces_timms_rexnet_widths(name, w, tmp_path, meta):
    scaled = tc.build(tc.plan("rexnet_100", w=w, rules=_book(tmp_path, REXNET)))
    reference = timm.create_model(name)
    assert param_count(scaled) == param_count(reference)
    assert {k: v.shape for k, v in scaled.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


def test_a_multiplier_the_constructor_rejects_names_file_and_field(tmp_path):
    book = _book(tmp_path, REXNET.replace("arg: width_mult", "arg: drop_rate"), "dropout.yaml")
    with pytest.raises(
        tc.RuleError,
        match=r"dropout.yaml: depth.arg, width.arg: timm's rexnet_100 rejected depth_mult=1.0, "
        r"drop_rate=1.2: ValueError: dropout probability",
    ):
        tc.plan("rexnet_100", d=1.0, w=6.0, rules=book)


# --- fields --------------------------------------------------------------------------------------


def test_fields_scale_dataclass_fields_and_per_block_slopes():
    plan = tc.plan("regnety_008", phi=1)
    assert plan.structure_args == {
        "model_cfg.depth": 17,
        "model_cfg.w0": 64,
        "model_cfg.wa": round(38.84 * 1.1 / 1.2, 6),
    }
    assert plan.base_depths == [1, 3, 8, 2] and plan.base_widths == [64, 128, 320, 768]
    assert plan.depths == [1, 4, 10, 2] and plan.widths == [64, 160, 368, 896]
    assert timm.models.regnet.model_cfgs["regnety_008"].depth == 14  # timm's shared config untouched


def test_a_field_the_constructor_rejects_names_the_assertion(tmp_path):
    data = yaml.safe_load((shipped_dir("rules") / "regnet.yaml").read_text())
    data["width"] = {"arg": ["model_cfg.w0", "model_cfg.wa"], "layout": "fields"}  # wa x w: stages grow past four
    path = tmp_path / "regnet_wa.yaml"
    path.write_text(yaml.safe_dump(data))
    book = RuleBook.alone(load_rule(path), path)
    with pytest.raises(
        tc.RuleError,
        match=r"regnet_wa.yaml: depth.arg, width.arg: timm's regnety_008 rejected "
        r"model_cfg.depth=35, .*AssertionError: assert len\(per_stage_args\) == 4",
    ):
        tc.plan("regnety_008", phi=5, rules=book)


# --- published numbers ----------------------------------------------------------------------------


def test_g16_widths_are_what_timm_builds_from_its_arch_def():
    plan = tc.plan("efficientnet_b0_g16_evos", phi=0)
    assert plan.base_widths == plan.widths == [16, 32, 48, 80, 112, 192, 320]  # arch_def: 24 -> 32, 40 -> 48
    assert tc.plan("efficientnet_b0_g16_evos", phi=1).widths == [16, 32, 48, 96, 128, 208, 352]


def test_the_scaling_guides_g16_table_is_measured():
    page = (ROOT / "docs" / "scaling.md").read_text()
    section = page[page.index("### G16-EfficientNet against EfficientNet-B0") :]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| ") and line[2].isdigit()][
        :4
    ]
    assert [int(row[0]) for row in rows] == [0, 1, 2, 3]
    for phi, px, b0_params, b0_gmacs, g16_params, g16_gmacs, params_ratio, gmacs_ratio in rows:
        b0, g16 = (
            tc.measure(f"efficientnet_b0_cs_phi{phi.strip()}"),
            tc.measure(f"efficientnet_b0_g16_evos_cs_phi{phi.strip()}"),
        )
        assert int(px) == b0.resolution == g16.resolution
        assert (f"{b0.params / 1e6:.2f} M", f"{b0.macs / 1e9:.3f}") == (b0_params.strip(), b0_gmacs.strip())
        assert (f"{g16.params / 1e6:.2f} M", f"{g16.macs / 1e9:.3f}") == (g16_params.strip(), g16_gmacs.strip())
        assert (f"{g16.params / b0.params:.2f}", f"{g16.macs / b0.macs:.2f}") == (
            params_ratio.strip(),
            gmacs_ratio.strip(),
        )
