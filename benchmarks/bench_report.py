"""Report speed for a large run: render time, page weight and (with Playwright) time to ready in Chromium.

Usage: python benchmarks/bench_report.py [--n 5000] [--repeats 3]
Builds a manifest of N records (the test suite's ``many_records``: scans that are not on
disk, so the page has placeholders, every 97th failed), renders ``report.html`` and prints
the median render seconds, the HTML size and, when Playwright's Chromium is installed, the
seconds until the page sets ``body[data-ready='1']``. These are the figures the README and
``docs/report.md`` quote; the tests check what the page does, not how fast.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import _report_helpers as H
from _table import print_table

from archive_restore.report import render


def open_seconds(path: Path) -> float | None:
    """Seconds from ``page.goto`` to the report's ready flag in headless Chromium (the system's
    ``chromium``, as the browser tests use, else Playwright's own), or None when there is none."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        return None
    exe = shutil.which("chromium")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            t0 = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready='1']")
            seconds = time.perf_counter() - t0
            browser.close()
            return seconds
    except Error as exc:  # no browser installed: report it, keep the render figures
        print(f"Chromium not available: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out_dir = root / "out"
        out_dir.mkdir()
        H.write_manifest(out_dir, H.many_records(root / "scans", args.n, seed=0, fail_every=97, error="decode error {i}"))
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            path = render(out_dir)
            times.append(time.perf_counter() - t0)
        opened = open_seconds(path)
        row = {"entries": args.n, "render_s": round(statistics.median(times), 3),
               "html_mb": round(path.stat().st_size / 1e6, 2),
               "chromium_ready_s": None if opened is None else round(opened, 2)}
    print_table([row], [("entries", "entries", ""), ("render s", "render_s", ""), ("HTML MB", "html_mb", ""),
                        ("Chromium ready s", "chromium_ready_s", "")])
    print(json.dumps(row))


if __name__ == "__main__":
    main()
