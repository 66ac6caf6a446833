"""The README's Python examples run and their comments are true (its other numbers are checked by the
tests of what they describe; tests/test_docs_examples.py parses its commands)."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_starts_with_the_two_setup_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]


def test_readme_python_examples(meta):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) == 3
    code = blocks[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["plan"].widths == [24, 40, 64, 128, 176, 304, 512]
    assert namespace["plan"].depths == [3, 5, 5, 7, 7, 9, 3]
    assert sum(p.numel() for p in namespace["model"].parameters()) == 30_389_784
    for claim in re.findall(r"# \((3, \d+, \d+)\)", code):
        assert claim == "3, 296, 296"


def test_readme_measure_and_fit_example():
    code = re.findall(r"```python\n(.*?)```", README, re.S)[1]
    namespace: dict = {"timm_compound": __import__("timm_compound")}
    lines = code.strip().splitlines()
    results = [eval(line.split("#")[0], namespace) for line in lines]
    assert round(results[0], 3) == 4.089
    assert results[1].resolution == 592 and results[1].params > 60e6
    fitted = results[2]
    assert fitted.complexity.gmacs <= 4 and fitted.complexity.gmacs > 0.95 * 4


def test_readme_publish_and_load_example(tmp_path, monkeypatch):
    import timm
    import torch

    import timm_compound

    monkeypatch.chdir(tmp_path)
    code = re.findall(r"```python\n(.*?)```", README, re.S)[2]
    namespace: dict = {"timm": timm, "timm_compound": timm_compound}
    exec(compile(code, "README.md", "exec"), namespace)
    assert sorted(p.name for p in namespace["folder"].iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = namespace["model"]
    assert loaded.compound_plan.phi == 1 and sum(p.numel() for p in loaded.parameters()) == sum(
        p.numel() for p in timm.create_model("resnet18_cs_phi1").parameters()
    )
    assert torch.isfinite(loaded(torch.randn(1, 3, 64, 64))).all()


def test_readme_counts_are_todays():
    import timm_compound
    from timm_compound.scaling.catalog import lookup, registered
    from timm_compound.scaling.rulebook import shipped_dir, shipped_rules

    rule_files = list(shipped_dir("rules").glob("*.yaml"))
    # the shipped registry files' variants (other tests may have registered user variants in this process)
    shipped = [name for name, variant in registered().items() if Path(variant.source).parent == shipped_dir("registry")]
    bases = {lookup(name)[0] for name in shipped}
    assert f"{len(rule_files)} rule files cover {len(shipped_rules().rules)} timm architectures" in README
    assert f"registers {len(shipped)} variants" in README and len(bases) == len(shipped_rules().rules)
    assert timm_compound.__version__
