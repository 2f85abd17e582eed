"""The dashboard with 1,000 runs: page weight and time to first render, in Debian's headless Chromium.

A real daemon on a registry filled beforehand (``_registry_fill``).  Each
load is a fresh browser context (nothing cached); weight is every byte the
page fetched (HTML, CSS, JavaScript, the first /api/runs answer, no
compression), and time to first render is the page's own
``swampd-first-render`` mark (the table drawn with every row), from the
start of navigation.  Baseline, in the same run: the same page on an
empty registry (what the page costs without data).  5 loads each; medians.

    .venv/bin/python bench/bench_dashboard.py [N ...]
"""
from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from _harness import Daemon
from _registry_fill import fill

LOADS = 5
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def load(browser, url: str) -> tuple[int, float, float, int, int]:
    """(bytes decoded, ms to first render, ms to DOMContentLoaded, rows drawn, bytes on the wire) of a cold load."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sizes: list[int] = []
    page.on("response", lambda r: sizes.append(len(r.body())) if r.status == 200 else None)
    page.goto(url)
    page.wait_for_selector("body[data-rendered='1']", timeout=60_000)
    wire = page.evaluate("performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
                         ".reduce((sum, e) => sum + e.transferSize, 0)")
    render = page.evaluate("performance.getEntriesByName('swampd-first-render')[0].startTime")
    dom = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
    rows = page.locator("#runs tbody tr").count()
    context.close()
    return sum(sizes), render, dom, rows, wire


def main(sizes: list[int]) -> None:
    from playwright.sync_api import sync_playwright

    print(f"{'runs':>14} {'rows':>6} {'weight (decoded)':>17} {'on the wire':>12} {'first render p50':>17} {'min':>8} "
          f"{'max':>8} {'DOMContentLoaded':>17}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for runs in sizes:
            root = Path(tempfile.mkdtemp(prefix="swampd-bench-dash-"))
            daemon = Daemon(root)
            fill(daemon.state_dir, runs)
            daemon.start()
            try:
                load(browser, daemon.url)  # warm the daemon (first registry reads), not the browser
                results = [load(browser, daemon.url) for _ in range(LOADS)]
            finally:
                daemon.cleanup()
            weight = results[0][0]
            renders = [r[1] for r in results]
            doms = [r[2] for r in results]
            label = f"{runs}" + (" (baseline)" if runs == 0 else "")
            print(f"{label:>14} {results[0][3]:>6} {weight / 1024:>14.1f}KiB {results[0][4] / 1024:>9.1f}KiB "
                  f"{statistics.median(renders):>15.0f}ms {min(renders):>6.0f}ms {max(renders):>6.0f}ms "
                  f"{statistics.median(doms):>15.0f}ms")
        browser.close()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [0, 1000])
