"""Bad rule and registry files are rejected with the file and the field named; nothing half-registered."""

from pathlib import Path

import pytest
import timm
import torch
import yaml

import timm_compound as tc
from timm_compound.scaling.rulebook import RuleBook, shipped_dir

SHIPPED_RESNET = shipped_dir("rules") / "resnet.yaml"


def write_rule(tmp_path: Path, **changes) -> Path:
    """The shipped ResNet rule with some top-level or dotted fields replaced (None deletes)."""
    data = yaml.safe_load(SHIPPED_RESNET.read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = data
        for key in parents:
            target = target[key]
        if value is None:
            del target[leaf]
        else:
            target[leaf] = value
    path = tmp_path / "rule.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_rule_round_trips(tmp_path):
    assert tc.load_rule(write_rule(tmp_path)).family == "resnet"


def test_not_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("family: resnet\ndepth: [unclosed\n")
    with pytest.raises(tc.RuleError, match=r"broken\.yaml: not valid YAML \(line 3"):
        tc.load_rule(path)


def test_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(tc.RuleError, match="list.yaml: expected a YAML mapping"):
        tc.load_rule(path)


def test_unsafe_yaml_tags_are_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("family: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(tc.RuleError, match="evil.yaml: not valid YAML"):
        tc.load_rule(path)


@pytest.mark.parametrize(
    "changes,field,message",
    [
        (dict(depth=None), "depth", "Field required"),
        (dict(width__divisor="eight"), "width.divisor", "valid integer"),
        (dict(depth__rounding="up"), "depth.rounding", "'ceil', 'round' or 'floor'"),
        (dict(coefficients__alpha=0.9), "coefficients.alpha", "greater than or equal to 1"),
        (
            dict(coefficients={"alpha": 1.5, "beta": 1.1, "gamma": 1.15}),
            "coefficients",
            r"alpha\*beta\^2\*gamma\^2 = 2.4003 is outside 2.0 ± 5%",
        ),
        (dict(architectures=["resnet18", "resnet19"]), "architectures.1", "unknown timm architecture 'resnet19'"),
        (dict(width__divisr=8), "width.divisr", "Extra inputs are not permitted"),
        (dict(stem={"policy": "fixed"}), "stem", "needs `arg`"),
        (dict(stem={"policy": "scale"}), "stem", "needs `arg`"),
        (
            dict(overrides={"resnet152": {"width": {"divisor": 16}}}),
            "overrides",
            "'resnet152' is not one of this rule's architectures",
        ),
        (
            dict(overrides={"resnet50": {"width": {"divisor": "sixteen"}}}),
            "overrides",
            "resnet50.width.divisor: Input should be a valid integer",
        ),
        (dict(overrides={"resnet50": {"family": "other"}}), "overrides", "may not change family"),
        # the v2 layouts' fields, each only with its layout
        (
            dict(depth__layout="rows", depth__arg=["layers", "more"]),
            "depth",
            "layout 'rows' takes one `arg`; a list of args is for 'multiplier' and 'fields'",
        ),
        (dict(depth__stride_column=4), "depth", "`stride_column` applies to layout 'rows', not 'counts'"),
        (dict(width__layout="rows"), "width", "layout 'rows' needs `column`"),
        (dict(depth__layout="separated"), "depth", "layout 'separated' needs `marker`"),
        (dict(width__per_block=["channels"]), "width", "`per_block` applies to layout 'fields', not 'list'"),
        (dict(width={"arg": "w0", "layout": "fields", "per_block": ["w0"]}), "width", r"\['w0'\] is in both `arg`"),
        (
            dict(depth={"arg": "layers", "layout": "fields", "fixed_stages": [0]}),
            "depth",
            "lets the constructor decide the stages: fixed_stages cannot apply",
        ),
        (
            dict(depth={"arg": "layers", "layout": "multiplier"}, stage_modules=None),
            "stage_modules",
            "depth.layout 'multiplier' reads the built stages back: set stage_modules",
        ),
        (
            dict(
                depth={"arg": "cfg", "layout": "separated", "marker": "M"},
                width={"arg": "cfg", "layout": "separated", "marker": "P"},
            ),
            "width",
            "split the same list differently",
        ),
        (dict(stage_modules={"path": ["a", "b"], "split_at": "MaxPool2d"}), "stage_modules", "must be a single path"),
        (
            dict(stage_modules={"path": "a", "skip": ["X"], "blocks": ["Y"]}),
            "stage_modules",
            "`skip` or `blocks`, not both",
        ),
        (dict(width__round_limit=-0.1), "width.round_limit", "greater than or equal to 0"),
        (dict(depth__arg="model cfg.depth"), "depth.arg", "'model cfg.depth' is not an argument path"),
        (dict(replaces="resnet"), "replaces", "needs a family name of its own"),
        (
            dict(stem={"policy": "fixed", "value": 64, "note": "hard-coded", "unless stem_type is deep": None}),
            "stem",
            "'unless stem_type is deep' looks like the rest of the note, cut at a comma",
        ),
    ],
)
def test_invalid_rule_names_file_and_field(tmp_path, changes, field, message):
    path = write_rule(tmp_path, **changes)
    with pytest.raises(tc.RuleError, match=message) as caught:
        tc.load_rule(path)
    assert caught.value.source == str(path)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{path}: {field}: ")


def test_constructor_arg_the_architecture_lacks(tmp_path):
    book = RuleBook()
    path = write_rule(tmp_path, width__arg="widths")
    book.add(tc.load_rule(path), path)
    with pytest.raises(tc.RuleError, match=r"rule.yaml: width.arg: ResNet has no constructor argument 'widths'"):
        tc.plan("resnet18", phi=1, rules=book)


def test_layout_of_the_wrong_type(tmp_path):
    book = RuleBook()
    path = write_rule(tmp_path, depth__arg="num_classes")
    book.add(tc.load_rule(path), path)
    with pytest.raises(tc.RuleError, match="depth.arg: constructor argument 'num_classes' is 1000, not a list"):
        tc.plan("resnet18", phi=1, rules=book)


def test_round_limit_zero_is_allowed(tmp_path):
    assert tc.load_rule(write_rule(tmp_path, width__round_limit=0)).width.round_limit == 0


def _plan_error(path: Path, base: str, phi: float = 1) -> tc.RuleError:
    book = RuleBook.alone(tc.load_rule(path), path)
    with pytest.raises(tc.RuleError) as caught:
        tc.plan(base, phi, rules=book)
    return caught.value


def _shipped_rule(tmp_path: Path, name: str, **parts) -> Path:
    data = yaml.safe_load((shipped_dir("rules") / name).read_text())
    for key, value in parts.items():
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) else value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_rows_column_out_of_range(tmp_path):
    path = _shipped_rule(
        tmp_path,
        "ghostnet.yaml",
        width={"arg": "cfgs", "layout": "rows", "column": 7},
        stem={"policy": "fixed", "value": 16, "note": "hard-coded"},
    )
    error = _plan_error(path, "ghostnet_100")
    assert (error.source, error.field) == (str(path), "width.column")
    assert error.reason == "column 7 is out of range for rows of 5 values (columns 0-4)"
    path = _shipped_rule(tmp_path, "ghostnet.yaml", depth={"stride_column": 5})
    assert _plan_error(path, "ghostnet_100").field == "depth.stride_column"


def test_separated_marker_that_never_appears(tmp_path):
    path = _shipped_rule(tmp_path, "vgg.yaml", depth={"marker": "P"}, width={"marker": "P"})
    error = _plan_error(path, "vgg11_bn")
    assert (error.source, error.field) == (str(path), "depth.marker")
    assert error.reason.startswith("marker 'P' never appears in 'model_cfg' ([64, 'M', 128, 'M', 256, 256, ...])")


def test_dotted_path_that_does_not_exist(tmp_path):
    path = _shipped_rule(tmp_path, "regnet.yaml", width={"arg": "model_cfg.w1"})
    error = _plan_error(path, "regnety_008")
    assert (error.source, error.field) == (str(path), "width.arg")
    assert error.reason.startswith("model_cfg (RegNetCfg) has no field 'w1'; its fields: depth, w0, wa, wm, group_size")
    path = write_rule(tmp_path, depth__arg="layers.first")
    error = _plan_error(path, "resnet18")
    assert (error.field, error.reason) == (
        "depth.arg",
        "layers is a tuple ((2, 2, 2, 2)), not a dataclass, named tuple or dict: the path cannot reach 'first'",
    )


def test_an_argument_of_another_shape_names_the_layouts_it_fits(tmp_path):
    path = _shipped_rule(tmp_path, "ghostnet.yaml", depth={"arg": "cfgs", "layout": "counts", "stride_column": None})
    error = _plan_error(path, "ghostnet_100")
    assert error.field == "depth.arg"
    assert (
        "not a list of ints; it fits layout rows (layouts for depth: counts, levels, block_args, rows, separated, "
        "entries, multiplier, fields)" in error.reason
    )
    path = write_rule(tmp_path, width__arg="num_classes")
    assert _plan_error(path, "resnet18").reason == (
        "constructor argument 'num_classes' is 1000, not a list of ints; "
        "it fits layout scalar or fields (layouts for width: list, scalar, "
        "block_args, rows, separated, multiplier, fields)"
    )


def test_two_rules_claiming_one_architecture(tmp_path):
    book = RuleBook()
    first = write_rule(tmp_path)
    book.add(tc.load_rule(first), first)
    with pytest.raises(tc.RuleError, match="architectures.0: 'resnet18' is already covered by the rule in"):
        book.add(tc.load_rule(first), Path("other.yaml"))


def write_registry(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    return path


def test_registry_unknown_base(tmp_path):
    path = write_registry(tmp_path, "variants:\n  - {base: resnet19, phis: [1]}\n")
    with pytest.raises(tc.RuleError, match="registry.yaml: variants.0.base: unknown timm architecture 'resnet19'"):
        tc.register_files([path])


def test_registry_base_without_a_rule(tmp_path):
    path = write_registry(tmp_path, "variants:\n  - {base: vgg16, phis: [1]}\n")
    with pytest.raises(tc.RuleError, match="variants.0.base: no rule covers 'vgg16'"):
        tc.register_files([path])


def test_registry_collision_with_timm_is_an_error_and_registers_nothing(tmp_path):
    path = write_registry(
        tmp_path,
        "variants:\n"
        "  - {base: resnet18, phis: [9], name: 'mytest_{base}_phi{phi}'}\n"
        "  - {base: resnet50, phis: [0], name: 'resnet50'}\n",
    )
    with pytest.raises(tc.RuleError, match="variants.1.name: 'resnet50' collides with an existing timm model name"):
        tc.register_files([path])
    assert not timm.is_model("mytest_resnet18_phi9")  # nothing half-registered
    assert timm.models.get_pretrained_cfg("resnet50").tag == "a1_in1k"  # timm's own entry untouched


def test_registry_collision_with_a_registered_variant(tmp_path):
    path = write_registry(tmp_path, "variants:\n  - {base: resnet18, phis: [2]}\n")
    with pytest.raises(tc.RuleError, match=r"'resnet18_cs_phi2' is already registered by .*registry/resnet.yaml"):
        tc.register_files([path])


@pytest.mark.parametrize(
    "text,field,message",
    [
        ("variants: []\n", "variants", "at least 1 item"),
        ("variants:\n  - {base: resnet18, phis: [-1]}\n", "variants.0.phis", "registered phis must be >= 0"),
        ("variants:\n  - {base: resnet18, phis: [1, 1]}\n", "variants.0.phis", "a phi is listed twice"),
        ("variants:\n  - {base: resnet18, phis: one}\n", "variants.0.phis", "valid list"),
        ("variants:\n  - {base: resnet18, phis: [1], hub: {2: org/x}}\n", "variants.0", r"hub lists phi \[2\]"),
        (
            "variants:\n  - {base: resnet18, phis: [1], name: 'x_{base}_{foo}'}\n",
            "variants.0.name",
            "name template 'x_{base}_{foo}' is not valid",
        ),
        ("variants:\n  - {base: resnet18, phis: [1], name: 'x_{base'}\n", "variants.0.name", "is not valid"),
        ("variants:\n  - {base: resnet18, phis: [1, 2], name: 'x_{base}'}\n", "variants.0", "must contain {phi}"),
    ],
)
def test_invalid_registry_names_file_and_field(tmp_path, text, field, message):
    path = write_registry(tmp_path, text)
    with pytest.raises(tc.RuleError, match=message) as caught:
        tc.load_registry(path)
    assert caught.value.field == field


def test_registering_a_new_name_works_and_builds_no_model(tmp_path, monkeypatch):
    path = write_registry(tmp_path, "variants:\n  - {base: resnet18, phis: [9], name: 'custom_{base}_phi{phi}'}\n")
    built = []
    original_init = torch.nn.Module.__init__

    def counting_init(self, *args, **kwargs):
        built.append(type(self).__name__)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "__init__", counting_init)
    (variant,) = tc.register_files([path])
    monkeypatch.undo()
    assert built == []  # registration plans from captured constructor arguments only
    assert variant.name == "custom_resnet18_phi9"
    model = timm.create_model("custom_resnet18_phi9", pretrained=False)
    assert model.compound_plan.phi == 9
    assert model.pretrained_cfg["input_size"][-1] == model.compound_plan.resolution
