"""The README's Python example runs and its comments are true."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_starts_with_the_two_setup_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]


def test_readme_python_examples(meta):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) == 2
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
