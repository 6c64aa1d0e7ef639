"""A real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium) and a real
`autolog ui` server, for the browser tests of the pages.

Where the browser, its driver, Selenium or the web server packages are missing, the tests skip saying
what to install - unless AUTOLOG_TEST_SERVICES=required (as .ci/run sets, which also installs them),
where they fail instead: CI must never pass by skipping them.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import services

# Debian's paths; another system's Chromium (or Chrome) and its matching driver can be named here.
CHROMIUM = os.environ.get("AUTOLOG_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("AUTOLOG_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
WINDOW = (1400, 900)
INSTALL_HINT = ("Debian: apt-get install chromium chromium-driver; Python: "
                '.venv/bin/pip install -c constraints.txt -e ".[test]" (selenium, starlette, uvicorn)')


def unavailable() -> str | None:
    """None when the browser tests can run here, else what is missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    missing += [name for name in ("selenium", "starlette", "uvicorn") if importlib.util.find_spec(name) is None]
    return f"missing: {', '.join(missing)}" if missing else None


def cannot_run(reason: str) -> None:
    """Fail in CI (AUTOLOG_TEST_SERVICES=required), skip elsewhere; either way say why and what to install."""
    __tracebackhide__ = True
    message = f"browser tests cannot run: {reason} ({INSTALL_HINT})"
    if services.services_required():
        pytest.fail(f"{message}; {services.REQUIRE_ENV}=required: CI must run them", pytrace=False)
    pytest.skip(message)


def start_chromium(download_dir: Path) -> Any:
    """Headless Chromium at 1400x900 whose downloads land in download_dir without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}", "--lang=en-US"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(download_dir),
        "download.prompt_for_download": False,
        "download.directory_upgrade": True,
        "safebrowsing.enabled": False,
    })
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


class UiServer:
    """`autolog ui --port 0` in a child process over AUTOLOG_HOME=home; .url once it listens."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autolog.cli", "ui", "--port", "0"], env=env,
            stdout=subprocess.PIPE, stderr=open(log, "wb"), start_new_session=True,
        )
        self.url = self._wait_for_url(timeout=60)

    def _wait_for_url(self, timeout: float) -> str:
        """The server prints "autolog ui: serving ... at http://127.0.0.1:PORT/" once its socket listens."""
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.5):
                if self.proc.poll() is not None:
                    break
                continue
            line = self.proc.stdout.readline().decode(errors="replace")
            if not line:
                break
            if " at http://" in line:
                return line.rsplit(" at ", 1)[1].strip().rstrip("/")
        self.stop()
        raise RuntimeError(f"`autolog ui` did not start (exit code {self.proc.returncode}): "
                           f"{self.log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """condition()'s first truthy value, polled; fails naming `what` after timeout seconds. Exceptions
    from Selenium while the page is still rendering (stale or missing elements) count as not yet."""
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except WebDriverException as exc:
            last_error = exc
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}"
                + (f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""), pytrace=False)


def wait_for_download(folder: Path, pattern: str = "*", timeout: float = 60, before: set[Path] = frozenset()) -> Path:
    """The file matching pattern in folder (not one of `before`) once Chromium has written it.

    Chromium reserves a download's name with an empty file, writes `<name>.crdownload`, and renames it
    over the reservation when done: the file is complete once it is not empty, whatever the
    .crdownload files of the moment say (there is none yet right after the reservation)."""
    def done() -> Path | None:
        found = sorted(p for p in folder.glob(pattern) if p not in before and not p.name.endswith(".crdownload")
                       and p.is_file() and p.stat().st_size > 0)
        return found[0] if found else None

    return wait_until(done, f"a download matching {pattern!r} in {folder}", timeout)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def severe_console_errors(driver: Any) -> list[str]:
    """Errors the pages' JavaScript logged (an exception, a failed load), since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
