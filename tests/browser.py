"""A headless Chromium for the web console's browser tests: Debian's `chromium` and
`chromium-driver` (installed by `make test` where it may), driven with Selenium.

Selenium is given both paths, so its Selenium Manager never looks for (or downloads) a driver:
the tests stay off the internet. Where Chromium is missing the browser tests are skipped and the
run's summary says why; `make screenshots` writes each page's picture under docs/screenshots/.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
#: Set to 1 (as `make screenshots` does) to write each page's screenshot under docs/screenshots/.
SCREENSHOTS_VARIABLE = "POLICYBOT_SCREENSHOTS"
DESKTOP = (1280, 900)
PHONE = (390, 844)


class BrowserMissing(RuntimeError):
    pass


def chromium_paths() -> tuple[str, str]:
    """Chromium and its ChromeDriver, from PATH or Debian's places."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if not browser or not driver:
        raise BrowserMissing(
            "Chromium or ChromeDriver not found: install Debian's `chromium` and "
            "`chromium-driver` (make test does where it runs as root) to run the browser tests"
        )
    return browser, driver


@contextmanager
def headless_chromium() -> Iterator[object]:
    """One headless Chromium session (a Selenium WebDriver), closed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(argument)
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    session.set_page_load_timeout(30)
    try:
        yield session
    finally:
        session.quit()


def screenshot(session: object, name: str, *, size: tuple[int, int] = DESKTOP) -> Path | None:
    """The page as the browser shows it at `size`, written to docs/screenshots/NAME.png when
    POLICYBOT_SCREENSHOTS=1; None otherwise (ordinary test runs leave docs/ alone)."""
    if os.environ.get(SCREENSHOTS_VARIABLE, "").strip() != "1":
        return None
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(session, WebDriver)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    session.set_window_size(*size)
    path = SCREENSHOTS / f"{name}.png"
    shown = Image.open(io.BytesIO(session.get_screenshot_as_png()))
    session.set_window_size(*DESKTOP)
    # A palette of 256 colours keeps a page of text and flat charts legible at a third of the
    # size, so the README's pictures stay small in the repository.
    shown.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE).save(path, optimize=True)
    return path
