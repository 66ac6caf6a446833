"""Render a local HTML page in real headless Chromium (Debian's /usr/bin/chromium, no Python driver):
a screenshot, and every <img>'s load state as the browser saw it.

The page under test holds no script, so a copy of it gets one that runs on `load` and writes what it
found into the DOM (`<body data-images=...>`), which `--dump-dom` prints.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--allow-file-access-from-files",
    "--no-first-run",
    "--disable-extensions",
    "--virtual-time-budget=10000",
]
# a control image that cannot decode: the check must report it broken, or the check itself is broken
CONTROL = '<img alt="control: broken on purpose" src="data:image/png;base64,AAAA">'
CHECK = (
    CONTROL
    + """<script>
window.addEventListener("load", () => {
  const found = [...document.images].map(image => ({alt: image.alt, complete: image.complete,
                                                  width: image.naturalWidth, height: image.naturalHeight}));
  document.body.setAttribute("data-images", JSON.stringify(found));
});
</script>"""
)


def _run(arguments: list[str], cwd: Path, timeout: float) -> str:
    done = subprocess.run(
        [CHROMIUM, *FLAGS, *arguments], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def images(page: Path, workdir: Path, timeout: float = 60) -> list[dict]:
    """[{alt, complete, width, height}] of every <img> after the page's load event, as Chromium saw them;
    the last is CONTROL, which must come back with width 0."""
    checked = workdir / f"{page.stem}.checked.html"
    checked.write_text(page.read_text(encoding="utf-8").replace("</body>", CHECK + "</body>", 1), encoding="utf-8")
    dom = _run(["--dump-dom", checked.resolve().as_uri()], workdir, timeout)
    match = re.search(r'data-images="([^"]*)"', dom)
    if match is None:
        raise AssertionError(f"the check script did not run; chromium printed {dom[:500]!r}")
    import html

    return json.loads(html.unescape(match.group(1)))


def screenshot(page: Path, path: Path, *, width: int = 1280, height: int = 2400, timeout: float = 60) -> Path:
    """A PNG of the page as Chromium renders it (the first `height` pixels)."""
    _run(
        [f"--screenshot={path.resolve()}", f"--window-size={width},{height}", page.resolve().as_uri()],
        path.parent,
        timeout,
    )
    if not path.is_file():
        raise AssertionError(f"chromium wrote no screenshot to {path}")
    return path
