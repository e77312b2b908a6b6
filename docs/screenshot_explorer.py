"""Regenerate docs/explorer.png, the README's screenshot of the explorer.

Usage: ``python docs/screenshot_explorer.py`` (needs the browser extra and chromium).
Builds ``unroll.explore("elman:hidden=4", compare=["lstm:hidden=4"], steps=8)``, opens it
in headless chromium, moves the gradient front to step 4, hovers the Elman net's h at
step 6 and saves the screenshot.
"""

import tempfile
from pathlib import Path

import unroll
from unroll.explore.browser import open_page, running_chromium

OUT = Path(__file__).resolve().parent / "explorer.png"


def main():
    """Build the page, drive it to a telling state, save the PNG."""
    page = unroll.explore("elman:hidden=4", compare=["lstm:hidden=4"], steps=8)
    with tempfile.TemporaryDirectory() as folder, running_chromium() as browser:
        path = page.save(Path(folder) / "explorer.html")
        tab = open_page(browser, path, width=1200, height=1200)
        tab.locator('input[type="range"]').fill("3")
        tab.locator('.panel[data-run="0"] g.node[data-node="h"][data-step="5"]').hover()
        tab.screenshot(path=str(OUT), full_page=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
