"""Open published reports in a real browser: check them as a reader would, take screenshots.

Drives the system's Chromium (Debian packages `chromium` and `chromium-driver`) through Selenium;
nothing is downloaded at run time. `make test` installs both where apt is available; the tests
skip with a message otherwise (see `unavailable_reason`).

    with chromium() as driver:
        problems = check_page(driver, Path("reports/index.html"))
        screenshot(driver, Path("reports/index.html"), Path("docs/index.png"))

`check_page` reports: console errors (JavaScript errors, resources that failed to load), images
that did not load (`naturalWidth == 0`), local links to files that do not exist, and a page wider
than the window (a cut-off column at 1280 px).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM_ENV, CHROMEDRIVER_ENV = "STUDY_CHROMIUM", "STUDY_CHROMEDRIVER"
DEFAULT_WIDTH, DEFAULT_HEIGHT = 1280, 900
# Flags that let Chromium run headless as root on a machine without network or GPU: no sandbox
# (root), no GPU process, and none of the background connections a closed network refuses.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
INSTALL_HINT = (
    "install Chromium and its driver (Debian: `apt-get install -y chromium chromium-driver`; "
    "`make test` does it where apt is available) and Selenium (`pip install -e '.[dev]'`)"
)


def _executable(env: str, *names: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def unavailable_reason() -> str | None:
    """Why no browser check can run here (None when Chromium, its driver and Selenium exist)."""
    missing = []
    if _executable(CHROMIUM_ENV, "chromium", "chromium-browser") is None:
        missing.append("chromium")
    if _executable(CHROMEDRIVER_ENV, "chromedriver") is None:
        missing.append("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return None
    return f"{', '.join(missing)} not found: {INSTALL_HINT}"


@contextlib.contextmanager
def chromium(width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT) -> Iterator[Any]:
    """A headless Chromium (Selenium WebDriver) with a fresh profile; quit on exit.

    Raises:
        RuntimeError: Chromium, chromedriver or Selenium is missing (message says how to fix).
    """
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = _executable(CHROMIUM_ENV, "chromium", "chromium-browser")
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # An explicit driver path: Selenium then never tries to download a driver.
        service = Service(executable_path=_executable(CHROMEDRIVER_ENV, "chromedriver"))
        driver = webdriver.Chrome(service=service, options=options)
        try:
            driver.set_page_load_timeout(60)
            yield driver
        finally:
            driver.quit()


def _load(driver: Any, page: Path) -> None:
    driver.get_log("browser")  # drop messages of earlier pages
    driver.get(Path(page).resolve().as_uri())
    for _ in range(100):
        if driver.execute_script("return document.readyState") == "complete":
            break
        driver.implicitly_wait(0.1)


def _local_target(page: Path, href: str) -> Path | None:
    """The file a relative link points to (None for web links, mail and in-page anchors)."""
    parsed = urllib.parse.urlparse(href)
    if parsed.scheme in ("http", "https", "mailto", "data", "javascript") or not parsed.path:
        return None
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.path))
    return (page.parent / urllib.parse.unquote(parsed.path)).resolve()


def check_page(driver: Any, page: Path, *, width: int = DEFAULT_WIDTH) -> list[str]:
    """Open `page` and return what a reader would find broken (empty list = fine)."""
    page = Path(page).resolve()
    driver.set_window_size(width, DEFAULT_HEIGHT)
    _load(driver, page)
    problems = [
        f"console {entry['level']}: {entry['message']}"
        for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE"
    ]
    broken = driver.execute_script(
        "return Array.from(document.images)"
        ".filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.getAttribute('src').slice(0, 120))"
    )
    problems += [f"image not loaded: {src}" for src in broken]
    hrefs = driver.execute_script(
        "return Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
    )
    for href in hrefs:
        target = _local_target(page, href)
        if target is not None and not target.exists():
            problems.append(f"broken link: {href}")
    scroll_width = driver.execute_script("return document.documentElement.scrollWidth")
    inner_width = driver.execute_script("return window.innerWidth")
    if scroll_width > inner_width:
        problems.append(f"page is wider than the window: {scroll_width} px > {inner_width} px")
    return problems


def screenshot(driver: Any, page: Path, png: Path, *, width: int = DEFAULT_WIDTH) -> Path:
    """Save a full-page screenshot of `page` at `width` px as `png`; return its path."""
    from lib.cache import atomic_write_bytes

    driver.set_window_size(width, DEFAULT_HEIGHT)
    _load(driver, Path(page))
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(int(height), 200))
    return atomic_write_bytes(png, driver.get_screenshot_as_png())
