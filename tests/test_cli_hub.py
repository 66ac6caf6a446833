"""`timm-compound publish`, against the test Hub (tests/hub_server.py)."""

from __future__ import annotations

import json
import os
import uuid

import timm
import torch
from typer.testing import CliRunner

from timm_compound.cli import app

runner = CliRunner()


def test_publish_to_dir_writes_loadable_files(tmp_path):
    folder = tmp_path / "out"
    result = runner.invoke(app, ["publish", "mobilenetv1_100_cs_phi0", "--repo", "org/mnv1", "--to-dir", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"wrote {folder}" in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert 'timm.create_model("hf-hub:org/mnv1", pretrained=True)' in (folder / "README.md").read_text()
    model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert json.loads((folder / "config.json").read_text())["compound_plan"]["base"] == "mobilenetv1_100"
    assert tuple(timm.data.resolve_model_data_config(model)["input_size"]) == (3, 224, 224)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)


def test_publish_uses_hf_token_and_never_prints_it(hub):
    token = "hf_cli" + uuid.uuid4().hex
    hub.token = token
    repo = f"org/cli-{uuid.uuid4().hex[:8]}"
    result = runner.invoke(
        app,
        ["publish", "mobilenetv1_100_cs_phi0", "--repo", repo, "--endpoint", os.environ["HF_ENDPOINT"]],
        env={"HF_TOKEN": token},
    )
    assert result.exit_code == 0, result.output
    assert f"published mobilenetv1_100_cs_phi0 to {repo} at commit {hub.head(repo)}" in result.output
    assert f"Bearer {token}" in hub.seen_authorization
    assert token not in result.output


def test_publish_errors_exit_1():
    result = runner.invoke(app, ["publish", "mobilenetv1_100_cs_phi0"])
    assert result.exit_code == 1
    assert "give --repo org/name to publish, or --to-dir DIR to write the files" in result.output
    result = runner.invoke(app, ["publish", "nope_cs_phi9", "--to-dir", "x"])
    assert result.exit_code == 1 and "'nope_cs_phi9' is not a registered variant" in result.output
