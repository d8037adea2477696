"""A real browser for the tests: Debian's Chromium (the Makefile installs it), driven by
Playwright with the system browser (nothing is downloaded), headless, no network."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from tests.conftest import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
# Headless on a machine with no network: without the background-networking flags Chromium
# keeps trying to reach Google's hosts.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"  # kept by CI as test artifacts


@dataclass
class PageCheck:
    url: str
    title: str = ""
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    text: str = ""

    @property
    def problems(self) -> list[str]:
        return self.console_errors + self.failed_requests + self.broken_images


@contextmanager
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} missing: `make test` installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def check_page(browser, path: Path, screenshot: Path | None = None) -> PageCheck:
    """Open a local page; record console errors, failed loads, broken images and links."""
    check = PageCheck(path.resolve().as_uri())
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on(
        "console",
        lambda message: (
            check.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: check.console_errors.append(str(error)))
    page.on("requestfailed", lambda request: check.failed_requests.append(request.url))
    page.goto(check.url, wait_until="load")
    page.wait_for_load_state("networkidle")
    check.title = page.title()
    check.broken_images = page.evaluate(
        "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.src)"
    )
    check.links = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    check.text = page.inner_text("body")
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=False)
    page.close()
    return check


def local_target(link: str) -> Path | None:
    """The file a file:// link points to (without its #fragment); None for other links."""
    parsed = urlparse(link)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None
