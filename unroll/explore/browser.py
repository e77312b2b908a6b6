"""Open explorer pages in headless chromium (the system's, driven by playwright).

For the explorer's browser tests, its benchmark and the README's screenshot: Debian's
``chromium`` (never a browser that ``playwright install`` downloads) with the flags that
keep it quiet and offline in a container.
"""

from __future__ import annotations

import contextlib
import shutil

__all__ = ["CHROMIUM_ARGS", "chromium_path", "open_page", "running_chromium"]

#: Flags for chromium in a container: no sandbox, no GPU, no background requests.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium_path() -> str | None:
    """The system's chromium, or ``None``.

    Examples
    --------
    >>> path = chromium_path()
    >>> path is None or "chromium" in path
    True
    """
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def running_chromium():
    """A headless chromium (a playwright ``Browser``), closed on exit.

    Raises
    ------
    ImportError
        Without the playwright package (``pip install rnn-unroll[browser]``).
    FileNotFoundError
        Without a system chromium.
    """
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, path, *, width: int = 1300, height: int = 1000, before=None):
    """A new tab of ``browser`` with the saved page ``path`` loaded from file:// and ready
    (its script has wired every copy, the plot and the controls). ``before(tab)`` runs
    before the page loads, e.g. to listen to its requests."""
    tab = browser.new_page(viewport={"width": width, "height": height})
    if before is not None:
        before(tab)
    tab.goto(path.resolve().as_uri())
    tab.wait_for_function("() => window.unrollExplorer && window.unrollExplorer.ready")
    return tab
