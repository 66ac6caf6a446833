"""Paths into nested constructor data (rule language v3): read and rebuilt through dicts, lists, tuples,
named tuples and dataclasses, never mutated; every bad path is an error naming the file, the field and
the first step that is missing."""

import dataclasses
from collections import namedtuple

import pytest
import yaml

import timm_compound as tc
from timm_compound.scaling import paths
from timm_compound.scaling.rulebook import RuleBook, load_rule, shipped_dir


@dataclasses.dataclass(frozen=True)
class Block:
    d: int
    c: int


@dataclasses.dataclass(frozen=True)
class Checked:
    depth: int

    def __post_init__(self):
        if self.depth > 10:
            raise ValueError("depth must be at most 10")


Row = namedtuple("Row", "kernel out_chs stride")
CFG = {
    "blocks": (Block(1, 48), Block(3, 48), Block(7, 384)),  # a tuple of dataclasses
    "stages": [[64, 64, 1], [128, 128, 2]],  # lists of plain rows
    "branches": {"stage2": {"num_channels": (18, 36)}},  # tuples of branch widths inside dicts
    "rows": [Row(3, 16, 1), Row(5, 24, 2)],  # named tuples
}


@pytest.mark.parametrize(
    "path, value",
    [
        ("cfg.blocks.*.d", [1, 3, 7]),
        ("cfg.blocks.2.d", 7),
        ("cfg.blocks.-1.c", 384),
        ("cfg.stages.*.1", [64, 128]),
        ("cfg.branches.stage2.num_channels", (18, 36)),
        ("cfg.branches.stage2.num_channels.*", [18, 36]),
        ("cfg.rows.*.out_chs", [16, 24]),
        ("cfg.rows.1:.stride", [2]),
        ("cfg.blocks.:-1.c", [48, 48]),
    ],
)
def test_a_path_reads_through_every_container(path, value):
    first, *rest = paths.steps(path)
    assert paths.read(CFG, rest, first) == value


def test_writing_rebuilds_each_container_and_changes_nothing_in_place():
    before = repr(CFG)
    deeper = paths.write(CFG, ["blocks", "*", "d"], [2, 4, 9], "cfg")
    assert deeper["blocks"] == (Block(2, 48), Block(4, 48), Block(9, 384)) and type(deeper["blocks"]) is tuple
    rows = paths.write(CFG, ["rows", "*", "out_chs"], [24, 32], "cfg")["rows"]
    assert rows == [Row(3, 24, 1), Row(5, 32, 2)] and all(type(row) is Row for row in rows)
    branches = paths.write(CFG, ["branches", "stage2", "num_channels", "1"], 40, "cfg")["branches"]
    assert branches == {"stage2": {"num_channels": (18, 40)}}
    assert paths.write(CFG, ["stages", "*", "1"], [72, 144], "cfg")["stages"] == [[64, 72, 1], [128, 144, 2]]
    assert repr(CFG) == before


@pytest.mark.parametrize(
    "path, message",
    [
        ("cfg.blocks.2.dd", "cfg.blocks.2 (Block) has no field 'dd'; its fields: d, c"),
        ("cfg.branches.stage3.num_channels", "cfg.branches (dict) has no key 'stage3'; its keys: stage2"),
        ("cfg.blocks.5.d", "cfg.blocks has 3 items: index 5 is out of range (indices 0-2)"),
        ("cfg.blocks.0.d.*", "cfg.blocks.0.d is an int (1), not a list or tuple: `*` selects items of a sequence"),
        ("cfg.branches.*", "cfg.branches is a dict ({'stage2': {'num_channels': (18, 36)}}), not a list or tuple"),
        (
            "cfg.stages.0.1.x",
            "cfg.stages.0.1 is an int (64), not a dataclass, named tuple or dict: the path cannot reach 'x'",
        ),
    ],
)
def test_a_bad_path_names_the_first_missing_step_and_what_is_there(path, message):
    first, *rest = paths.steps(path)
    with pytest.raises(paths.PathError) as caught:
        paths.read(CFG, rest, first)
    assert str(caught.value).startswith(message)


def test_a_dataclass_that_refuses_a_value_names_the_path_and_the_field():
    with pytest.raises(
        paths.PathError,
        match=r"a Checked dataclass at cfg.0 refused cfg.0.depth=12: ValueError: "
        r"depth must be at most 10",
    ):
        paths.write([Checked(3)], ["0", "depth"], 12, "cfg")


def _gernet_rule(tmp_path, **changes):
    data = yaml.safe_load((shipped_dir("rules") / "gernet.yaml").read_text())
    for part, change in changes.items():
        data[part] = {**data[part], **change} if isinstance(change, dict) else change
    path = tmp_path / "gernet_edit.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "arg, message",
    [
        (
            "model_cfg.blocks.*.depth",
            "model_cfg.blocks.0 (ByoBlockCfg) has no field 'depth'; its fields: type, d, c, s, gs",
        ),
        ("model_cfg.blocks.9.d", "model_cfg.blocks has 5 items: index 9 is out of range (indices 0-4)"),
        (
            "model_cfg.stem_chs.*",
            "model_cfg.stem_chs is an int (13), not a list or tuple: `*` selects items of a sequence",
        ),
        ("model_cfg.block.*.d", "model_cfg (ByoModelCfg) has no field 'block'; its fields: blocks, downsample"),
    ],
)
def test_bad_paths_in_a_rule_name_file_field_and_step(tmp_path, arg, message):
    path = _gernet_rule(tmp_path, depth={"arg": arg})
    with pytest.raises(tc.RuleError) as caught:
        tc.plan("gernet_s", 1, rules=RuleBook.alone(load_rule(path), path))
    assert (caught.value.source, caught.value.field) == (str(path), "depth.arg")
    assert caught.value.reason.startswith(message), caught.value.reason


def test_a_malformed_path_is_refused_when_the_rule_loads(tmp_path):
    path = _gernet_rule(tmp_path, depth={"arg": "model_cfg.blocks[2].d"})
    with pytest.raises(
        tc.RuleError,
        match=r"gernet_edit.yaml: depth.arg: 'model_cfg.blocks\[2\].d' is not an argument "
        r"path: .* indices \(2, -1\), `\*` or slices",
    ):
        load_rule(path)


def test_gernet_scales_only_the_depth_field_of_each_block_config(meta):
    """gernet_s keeps its stages in a tuple of ByoBlockCfg dataclasses: `model_cfg.blocks.*.d`."""
    import timm

    base = tc.plan("gernet_s", 0)
    assert base.base_depths == [1, 3, 7, 2, 1]
    scaled = tc.plan("gernet_s", d=1.5)
    assert scaled.depths == [2, 5, 11, 3, 2]
    model = tc.build(scaled)
    assert tc.stage_depths(model, scaled) == [2, 5, 11, 3, 2]
    cfg = timm.models.byobnet.model_cfgs["gernet_s"]
    assert [block.d for block in cfg.blocks] == [1, 3, 7, 2, 1]  # timm's shared config untouched
