"""A real headless Chromium for page tests: Debian's ``chromium`` driven by Playwright.

Playwright's own browser download cannot work here (and is not wanted: the
browser comes from the distribution, ``scripts/setup-system.sh`` installs
it), so the fixture launches ``/usr/bin/chromium`` through Playwright's
Chromium driver.  One browser per test session; each test gets a fresh page.
Screenshots go under the test's own tmp_path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


#: One Playwright and one browser per process, however many test modules import the fixture
#: (each import is a fixture of its own to pytest; a second sync_playwright() in one process fails).
_SHARED: dict[str, Any] = {"users": 0}


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """The browser (Playwright ``Browser``), started once per session."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/setup-system.sh"
    if not _SHARED["users"]:
        _SHARED["playwright"] = sync_playwright().start()
        _SHARED["browser"] = _SHARED["playwright"].chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                                   timeout=60_000)
    _SHARED["users"] += 1
    try:
        yield _SHARED["browser"]
    finally:
        _SHARED["users"] -= 1
        if not _SHARED["users"]:
            _SHARED.pop("browser").close()
            _SHARED.pop("playwright").stop()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A new page in its own context; console errors and page errors are collected on it."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    tab.console_errors = []  # type: ignore[attr-defined]
    tab.on("console", lambda msg: tab.console_errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: tab.console_errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
