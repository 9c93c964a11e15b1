"""Headless Chromium for the web-UI tests and benchmark: Debian's ``chromium`` driven by
Playwright's Python package through ``executable_path`` (Playwright's own browser downloads are
never used: ``playwright install`` cannot run here).

``chromium_path()`` says where the browser is, or why there is none (the tests skip with that
reason); ``open_browser(tmp_dir)`` yields a fresh persistent context (its own ``--user-data-dir``
under ``tmp_dir``) with the flags this machine needs, closed whatever happens.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> tuple[str | None, str]:
    """(path, "") when a browser and Playwright are there, else (None, why not)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None, "Playwright's Python package is not installed (pip install -e '.[webui-test]')"
    for candidate in (os.environ.get("NASCLI_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (found := shutil.which(candidate)):
            return found, ""
    return None, "no chromium on PATH (scripts/dev.sh installs Debian's chromium with apt-get)"


@contextmanager
def open_browser(tmp_dir: Path, width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A Playwright browser context on a fresh profile; yields the context."""
    from playwright.sync_api import sync_playwright

    path, why = chromium_path()
    if path is None:
        raise RuntimeError(why)
    profile = tmp_dir / "chromium-profile"
    profile.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=path,
            headless=True,
            args=["--headless", *FLAGS],
            viewport={"width": width, "height": height},
        )
        try:
            yield context
        finally:
            context.close()
