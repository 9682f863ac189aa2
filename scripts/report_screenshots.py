"""Screenshots of a real report: the grid and the viewer of one image, in headless Chromium.

Usage: python scripts/report_screenshots.py OUT_DIR GRID.png VIEWER.png [IMAGE_NAME_PART]
OUT_DIR is a `restore folder` output (report.html inside). Needs the dev extra (playwright)
and Debian's /usr/bin/chromium. Prints any console error the page produced.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)  # usage
    import tempfile

    from playwright.sync_api import sync_playwright

    out_dir, grid_png, viewer_png = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    pick = sys.argv[4] if len(sys.argv) > 4 else None
    errors: list[str] = []
    with tempfile.TemporaryDirectory() as prof, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(prof, executable_path="/usr/bin/chromium", headless=True, args=ARGS,
                                                    viewport={"width": 1280, "height": 800}, device_scale_factor=1)
        page = ctx.new_page()
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out_dir / "report.html").resolve().as_uri())
        page.wait_for_selector("body[data-ready='1']")
        time.sleep(1.0)  # lazy thumbnails
        page.screenshot(path=str(grid_png))
        tile = page.locator(".tile", has_text=pick) if pick else page.locator(".tile")
        tile.first.click()
        time.sleep(1.5)
        page.keyboard.press("m")
        time.sleep(0.3)
        page.screenshot(path=str(viewer_png))
        ctx.close()
    print("console errors:", errors or "none")


if __name__ == "__main__":
    main()
