"""Remake the README's screenshots of `autolog ui`: docs/ui-task.png and docs/ui-lineage.png (1400x900).

    python docs/make_screenshots.py

Runs the digits examples as a user would (examples/train_digits.py, evaluate_digits.py, report_digits.py)
into a fresh AUTOLOG_HOME in a temp folder, starts `autolog ui` over it, and photographs the
"train with reporting" task page (its charts) and the lineage graph train -> model -> evaluate with
headless Chromium. Needs the examples' packages and the test extra (pip install -e ".[examples,test,ui]"),
and Debian's chromium + chromium-driver.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
SIZE = (1400, 900)
MAX_BYTES = 300_000
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def run_example(env: dict[str, str], work: Path, script: str, *args: str) -> None:
    print(f"running examples/{script} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(REPO / "examples" / script), *args], env=env, cwd=work, check=True,
                   stdout=subprocess.DEVNULL, timeout=900)


def start_ui(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "autolog.cli", "ui", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True)
    line = proc.stdout.readline()  # "autolog ui: serving ... at http://127.0.0.1:PORT/", printed once it listens
    if " at http://" not in line:
        proc.kill()
        raise SystemExit(f"`autolog ui` did not start: {line}{log.read_text()}")
    return proc, line.rsplit(" at ", 1)[1].strip().rstrip("/")


def api(base: str, path: str, **query: str) -> dict:
    with urllib.request.urlopen(f"{base}{path}?{urllib.parse.urlencode(query)}", timeout=30) as response:
        return json.load(response)


def task_id(base: str, name: str) -> str:
    [task] = [t for t in api(base, "/api/tasks", project="digits", q=name)["tasks"] if t["name"] == name]
    return task["id"]


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
                     f"--window-size={SIZE[0]},{SIZE[1]}", "--lang=en-US"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # The page itself exactly 1400x900, whatever the window around it.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": SIZE[0], "height": SIZE[1], "deviceScaleFactor": 1, "mobile": False})
    return driver


def wait_for(driver, script: str, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script(script):
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def save(driver, name: str) -> None:
    """The page as PNG; quantized to 256 colours if it is over MAX_BYTES (the README's images stay small)."""
    from PIL import Image

    png = driver.get_screenshot_as_png()
    image = Image.open(io.BytesIO(png))
    assert image.size == SIZE, f"screenshot is {image.size}, not {SIZE}"
    if len(png) > MAX_BYTES:
        out = io.BytesIO()
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, "PNG", optimize=True)
        png = out.getvalue()
    (DOCS / name).write_bytes(png)
    print(f"wrote docs/{name} ({len(png) // 1024} KB)")


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="autolog-screenshots-"))
    home, work = scratch / "home", scratch / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLOG_")}
    env.update(AUTOLOG_HOME=str(home), PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p))
    server = None
    try:
        run_example(env, work, "train_digits.py", "--epochs", "8", "--out", "runs/digits")
        run_example(env, work, "evaluate_digits.py", "--weights", "runs/digits/best.pt")
        run_example(env, work, "report_digits.py", "--epochs", "8", "--out", "runs/report-digits")
        server, base = start_ui(env, scratch / "ui.log")
        driver = browser()
        try:
            driver.get(f"{base}/tasks/{task_id(base, 'train with reporting')}")
            wait_for(driver, "return document.querySelectorAll('figure.chart[data-drawn]').length >= 2", "the charts")
            time.sleep(0.5)
            save(driver, "ui-task.png")
            driver.get(f"{base}/lineage?task={task_id(base, 'train')}")
            wait_for(driver, "return document.querySelectorAll('svg#lineage-graph a.node').length >= 3", "the graph")
            time.sleep(0.5)
            save(driver, "ui-lineage.png")
        finally:
            driver.quit()
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
