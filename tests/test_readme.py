"""The README's Python example runs and its comments are true."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_starts_with_the_two_setup_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]


def test_readme_python_example(meta):
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["plan"].widths == [24, 40, 64, 128, 176, 304, 512]
    assert namespace["plan"].depths == [3, 5, 5, 7, 7, 9, 3]
    assert sum(p.numel() for p in namespace["model"].parameters()) == 30_389_784
    for claim in re.findall(r"# \((3, \d+, \d+)\)", code):
        assert claim == "3, 296, 296"
