"""Helpers for the `autolog ui` tests: a store filled by real SDK calls, and a client of the real app.

The chain store (build_chain) is written by a child interpreter, as a user's three scripts would:

    pretrain  (project "chain", tags base, best; output_uri=True): joblib.dump -> pretrain.joblib; a folder
              model (update_weights_package); scalars (loss/train with a NaN, acc/val); a single value;
              artifacts: a dict (json), a DataFrame (pandas), an image (PIL), a text file, a URL reference
    finetune  joblib.load(pretrain.joblib) -> linked to pretrain's snapshot; joblib.dump -> finetune.joblib;
              parameters (General/lr, Args/api_key, Args/max_tokens)
    evaluate  joblib.load of a COPY of finetune.joblib from another folder: linked by content to finetune's
              snapshot; fails (mark_failed), so the list holds every status but running
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

CHAIN_SCRIPT = r'''
import json, os, shutil, sys
import joblib, numpy as np, pandas as pd
from PIL import Image
from autolog import OutputModel, Task

work = sys.argv[1]
os.makedirs(f"{work}/copies", exist_ok=True)
pre = Task.init(project_name="chain", task_name="pretrain", tags=["base", "best"], output_uri=True)
joblib.dump({"w": np.arange(1000)}, f"{work}/pretrain.joblib")
log = pre.get_logger()
for i in range(30):
    log.report_scalar("loss", "train", 1.0 / (i + 1), i)
    log.report_scalar("acc", "val", i / 30, i)
log.report_scalar("loss", "train", float("nan"), 30)
log.report_single_value("best_acc", 0.93)
pre.upload_artifact("config", {"lr": 0.1, "layers": [64, 32]})
pre.upload_artifact("frame", pd.DataFrame({"a": range(30), "b": [x * 2 for x in range(30)]}))
pre.upload_artifact("picture", Image.new("RGB", (8, 6), (255, 0, 0)))
with open(f"{work}/notes.txt", "w") as f:
    f.write("first line\nsecond line\n")
pre.upload_artifact("notes", f"{work}/notes.txt")
pre.upload_artifact("dataset", "s3://bucket/data/train.csv")
os.makedirs(f"{work}/export/sub", exist_ok=True)
with open(f"{work}/export/config.json", "w") as f:
    f.write('{"hidden": 64}')
with open(f"{work}/export/sub/weights.bin", "wb") as f:
    f.write(bytes(range(256)) * 40)
folder = OutputModel(task=pre, name="exported", framework="custom", config_dict={"hidden": 64},
                     label_enumeration={"cat": 0, "dog": 1})
folder.update_weights_package(weights_path=f"{work}/export")
pre.close()

fine = Task.init(project_name="chain", task_name="finetune", output_uri=True)
fine.connect({"lr": 0.01})
fine.set_parameters({"Args/api_key": "sekrit-value-123", "Args/max_tokens": 512})
joblib.load(f"{work}/pretrain.joblib")
joblib.dump({"w": np.arange(1000) * 2}, f"{work}/finetune.joblib")
fine.close()

shutil.copy(f"{work}/finetune.joblib", f"{work}/copies/finetune-copy.joblib")
ev = Task.init(project_name="chain", task_name="evaluate")
joblib.load(f"{work}/copies/finetune-copy.joblib")
ev.mark_failed("evaluation below threshold")
ev.close()
print(json.dumps({"pretrain": pre.id, "finetune": fine.id, "evaluate": ev.id}))
'''


def build_chain(home: Path, work: Path, env: dict[str, str]) -> dict[str, str]:
    """Run the three stages in a child interpreter with AUTOLOG_HOME=home; {stage: task id}."""
    work.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(CHAIN_SCRIPT), str(work)],
                          env={**env, "AUTOLOG_HOME": str(home)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_client(home: Path | None = None, token: str | None = None, loopback_only: bool = True,
                db_url: str | None = None) -> Any:
    """A TestClient of the real app over the store of `home` (default: this test's AUTOLOG_HOME)."""
    from starlette.testclient import TestClient

    from autolog.config import load_settings
    from autolog.context import Context
    from autolog.ui.app import create_app

    saved = {k: os.environ.get(k) for k in ("AUTOLOG_HOME", "AUTOLOG_DB_URL")}
    try:
        if home is not None:
            os.environ["AUTOLOG_HOME"] = str(home)
        if db_url is not None:
            os.environ["AUTOLOG_DB_URL"] = db_url
        ctx = Context(load_settings())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    app = create_app(ctx, token=token, loopback_only=loopback_only)
    return TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False, follow_redirects=False)


def json_ok(client: Any, path: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def assert_error(response: Any, status: int, *words: str) -> dict:
    """A one-line JSON error with this status naming each of words; never a traceback."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error", "status"} and body["status"] == status
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    for word in words:
        assert word in body["error"], (word, body["error"])
    return body


def assert_error_page(response: Any, status: int, *words: str) -> str:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("text/html")
    text = response.text
    assert "<link rel=stylesheet href=/static/style.css>" in text and "Traceback" not in text
    for word in words:
        assert word in text, (word, text)
    return text
