"""A real Chromium (Debian's `chromium` + `chromium-driver`) driven by selenium, headless, with
no browser download: the system binaries or, outside CI, a skip naming the packages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.components import IN_CI

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "console"  # git-ignored; look at them after a run
INSTALL = "apt-get install -y chromium chromium-driver; pip install selenium"


def _missing(message: str):
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def start_chromium(width: int = 1280, height: int = 1000):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing(f"selenium is not installed: {INSTALL}")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        _missing(f"chromium and chromium-driver are not installed: {INSTALL}")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def screenshot(browser, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def page_errors(browser) -> list[str]:
    """What the page logged as errors (a CSP violation, an exception) since the last call."""
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
