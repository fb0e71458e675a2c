"""Headless Chromium for the page tests: find it (fail in CI, skip elsewhere), probe, shoot.

CI installs Debian's ``chromium`` (``.ci/run``), so a missing browser there is a broken CI image,
not a reason to skip: :func:`chromium` fails when ``$CI`` is set.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str:
    """Path of a Chromium binary; skips without one, except in CI (``$CI`` set) where it fails.

    CI installs Debian's ``chromium`` (``.ci/run``), so a missing browser there is a broken CI
    image, not a reason to skip the page tests.
    """
    found = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def browser_images(page: Path, tmp: Path, browser: str) -> list[tuple[bool, int, int]]:
    """``(complete, naturalWidth, naturalHeight)`` of every image of ``page`` after load."""
    probe = tmp / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => { document.body.setAttribute("
        "'data-sizes', Array.from(document.images).map(i => i.complete + ':' + i.naturalWidth"
        " + 'x' + i.naturalHeight).join(' ')); });</script>"
    )
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", script + "</body>"))
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    dom = subprocess.run(
        [*args, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=90
    ).stdout
    sizes = re.search(r'data-sizes="([^"]*)"', dom)
    assert sizes, f"no data-sizes attribute in the DOM: {dom[:300]!r}"
    out = []
    for entry in sizes.group(1).split():
        complete, size = entry.split(":")
        width, height = (int(v) for v in size.split("x"))
        out.append((complete == "true", width, height))
    return out


def screenshot(page: Path, shot: Path, browser: str, size: str = "1200,2400") -> Path:
    """A headless Chromium screenshot of ``page``."""
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    subprocess.run(
        [*args, f"--screenshot={shot}", f"--window-size={size}", page.as_uri()],
        capture_output=True,
        timeout=90,
    )
    return shot
