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
import time
import uuid
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


# -- a series longer than max_points: the scalars route aggregates it in SQL -------------------------------
LONG = 30_000  # iterations 0 .. LONG - 1
SPIKE, NAN_RUN = 12_345, range(20_000, 22_000)  # a spike of 100.0; NaN (a run longer than a bucket of max_points=100)
LONG_FIRST, LONG_LAST = 1.0, 0.25  # the values reported last at iterations 0 and LONG - 1 (each was reported twice)


def write_long_series() -> str:
    """A task with one series ("loss", "train") of LONG points, 1 / (iteration + 1) but for the spike and the NaN
    run, written to the store of this process's AUTOLOG_HOME / AUTOLOG_DB_URL as the SDK writes it; its id."""
    from autolog.config import load_settings
    from autolog.context import Context
    from autolog.db import reporting
    from autolog.db import schema as s

    store = Context(load_settings()).store
    task_id, now = uuid.uuid4().hex, time.time()
    with store.write() as conn:
        conn.execute(s.tasks.insert().values(id=task_id, project="long", name="long", task_type="training",
                                             status="completed", created=now, ended=now + 1, tags=[], run_info={},
                                             parameters={}, comment=""))

    def value(i: int) -> float | None:
        return 100.0 if i == SPIKE else None if i in NAN_RUN else 1.0 / (i + 1)

    points = [(0, 7.0)] + [(i, value(i)) for i in range(LONG)] + [(LONG - 1, LONG_LAST)]  # re-reported ends
    reporting.insert_scalars(store, [dict(task_id=task_id, title="loss", series="train", iteration=i, value=v, time=now)
                                     for i, v in points])
    return task_id


def check_long_series(client: Any, task_id: str) -> None:
    """The route's view of write_long_series's task: at most max_points points, x increasing, the ends exact
    (the value reported last), the spike's value kept near its iteration, NaN only within the NaN run (as
    null, the run kept as a gap), and a monotone stretch drawn exactly (each point on the curve)."""
    for most in (2000, 100):
        [series] = json_ok(client, f"/api/tasks/{task_id}/scalars?max_points={most}")["series"]
        x, y = series["x"], series["y"]
        assert most // 2 < len(x) == len(y) <= most
        assert all(a < b for a, b in zip(x, x[1:]))
        assert (x[0], y[0]) == (0, LONG_FIRST) and (x[-1], y[-1]) == (LONG - 1, LONG_LAST)
        width = LONG / ((most - 2) // 2)  # of a bucket, about
        assert [abs(i - SPIKE) < width for i, v in zip(x, y) if v == 100.0] == [True]
        gaps = [i for i, v in zip(x, y) if v is None]
        assert gaps and all(i in NAN_RUN for i in gaps)
        away = [(i, v) for i, v in zip(x, y) if 0 < i < SPIKE - width or NAN_RUN[-1] + 2 * width < i < LONG - 1]
        assert len(away) > most // 4 and all(v == 1.0 / (i + 1) for i, v in away)
    [series] = json_ok(client, f"/api/tasks/{task_id}/scalars?max_points=3")["series"]
    assert (series["x"], series["y"]) == ([0, LONG - 1], [LONG_FIRST, LONG_LAST])
