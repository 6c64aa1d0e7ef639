"""The pages of `autolog ui` in a real headless Chromium, over a store written by the public SDK.

One store for the module (chain_store.py, one interpreter per stage as a user's scripts): a chain
pretrain -> finetune -> evaluate where each stage loads the previous stage's snapshot, the last one from
a copy of the file (linked by content only), plus a task in another project. One real `autolog ui`
server over it, one browser. Each test saves a screenshot per step under its tmp_path.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

import browser as chrome

# One xdist worker runs the whole module (`--dist loadgroup` in pyproject.toml): its store, server and
# browser are built once, not once per worker.
pytestmark = pytest.mark.xdist_group("browser")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SVG_NS = "{http://www.w3.org/2000/svg}"
# Variables that would point the stages or the server at another store than this module's.
_ISOLATING = ("AUTOLOG_CONFIG", "AUTOLOG_DB_URL", "AUTOLOG_DEFAULT_OUTPUT_URI", "AUTOLOG_TASK_ID", "AUTOLOG_TASK_PID",
              "AUTOLOG_UI_TOKEN")


@dataclass
class Site:
    url: str
    made: dict[str, dict[str, Any]]  # stage -> what chain_store.py printed
    downloads: Path

    def task(self, stage: str) -> str:
        return self.made[stage]["task"]

    def model(self, stage: str) -> str:
        return self.made[stage]["model"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ISOLATING}
    env.update(AUTOLOG_HOME=str(home), AUTOLOG_STRICT="1", PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    return env


def _stage(env: dict[str, str], work: Path, *args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(HERE / "chain_store.py"), args[0], str(work), *args[1:]],
                          env=env, cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"stage {args[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    reason = chrome.unavailable()
    if reason:
        chrome.cannot_run(reason)
    root = tmp_path_factory.mktemp("ui-site")
    home, work, downloads = root / "home", root / "work", root / "downloads"
    for folder in (home, work, downloads):
        folder.mkdir()
    env = _env(home)
    made = {"pretrain": _stage(env, work, "pretrain")}
    made["finetune"] = _stage(env, work, "finetune", made["pretrain"]["model"])
    made["evaluate"] = _stage(env, work, "evaluate")
    made["other"] = _stage(env, work, "other")
    server = chrome.UiServer(env, root / "server.log")
    try:
        yield Site(server.url, made, downloads)
    finally:
        server.stop()


WIDE = 100  # variants: 2 * WIDE + 2 nodes in one graph


@pytest.fixture(scope="module")
def wide_site(site: Site, tmp_path_factory: pytest.TempPathFactory):
    """A store of its own (the task list tests count the tasks of `site`): one base model loaded by WIDE tasks."""
    root = tmp_path_factory.mktemp("ui-wide")
    (root / "home").mkdir()
    env = _env(root / "home")
    made = _stage(env, root, "wide", str(WIDE))
    server = chrome.UiServer(env, root / "server.log")
    try:
        yield Site(server.url, {"base": made}, site.downloads)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def driver(site: Site):
    try:
        session = chrome.start_chromium(site.downloads)
    except Exception as exc:  # noqa: BLE001 - any failure to start the browser is the skip/fail reason
        chrome.cannot_run(f"Chromium did not start: {type(exc).__name__}: {exc}")
    yield session
    session.quit()


@pytest.fixture
def browser(driver):
    """The module's browser, its console log emptied; a test ends with no JavaScript error logged."""
    driver.get_log("browser")
    yield driver


@pytest.fixture
def shot(browser, tmp_path: Path) -> Callable[[str], Path]:
    """shot(name): a screenshot of the page now, as tmp_path/NN-name.png."""
    taken: list[Path] = []

    def take(name: str) -> Path:
        path = tmp_path / f"{len(taken) + 1:02d}-{name}.png"
        browser.save_screenshot(str(path))
        taken.append(path)
        return path

    return take


def by_css(driver, css: str) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def task_names(driver) -> list[str]:
    """The task list's names, top to bottom, read in one script (the table may be re-rendering)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('tr[data-task-id] td:nth-child(2)')].map((td) => td.textContent);")


def wait_names(driver, expected: list[str], what: str) -> None:
    seen: list[list[str]] = []

    def shown() -> bool:
        seen.append(task_names(driver))
        return seen[-1] == expected

    try:
        chrome.wait_until(shown, f"{what}: rows {expected}")
    finally:
        if seen and seen[-1] != expected:
            print(f"{what}: the last rows shown were {seen[-1]}")


def no_script_errors(driver) -> None:
    errors = chrome.severe_console_errors(driver)
    assert not errors, f"the pages logged errors: {errors}"


# -- the task list ----------------------------------------------------------------------------------
def test_task_list_filters_sorts_pages_and_keeps_its_state_in_the_url(site: Site, browser, shot):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    browser.get(site.url + "/")
    wait_names(browser, ["unrelated run", "evaluate", "finetune", "pretrain"], "every task, newest first")
    shot("all-tasks")

    Select(by_css(browser, "select[name=project]")[0]).select_by_value("ui-chain")
    wait_names(browser, ["evaluate", "finetune", "pretrain"], "the project filter")
    assert "project=ui-chain" in browser.current_url
    assert {cell.text for cell in by_css(browser, "tr[data-task-id] td:nth-child(3)")} == {"ui-chain"}
    shot("project-filter")

    browser.refresh()  # the filtered view comes back from the URL alone
    wait_names(browser, ["evaluate", "finetune", "pretrain"], "the project filter after a reload")
    assert Select(by_css(browser, "select[name=project]")[0]).first_selected_option.get_attribute("value") == "ui-chain"

    search = by_css(browser, "input[name=q]")[0]
    search.clear()
    search.send_keys("FINE", Keys.ENTER)  # case-insensitive substring of name or project
    wait_names(browser, ["finetune"], "the text filter")
    assert "q=FINE" in browser.current_url and "project=ui-chain" in browser.current_url
    shot("text-filter")

    browser.get(site.url + "/?q=unrelated")
    wait_names(browser, ["unrelated run"], "a text filter opened from a link")

    browser.get(site.url + "/?project=ui-chain&sort=name")
    wait_names(browser, ["evaluate", "finetune", "pretrain"], "sorted by name")
    by_css(browser, "button.sort[data-sort=name]")[0].click()
    wait_names(browser, ["pretrain", "finetune", "evaluate"], "sorted by name, descending")
    assert "sort=-name" in browser.current_url
    shot("sorted")

    browser.get(site.url + "/?project=ui-chain&sort=name&limit=2")
    wait_names(browser, ["evaluate", "finetune"], "page 1 of 2")
    assert by_css(browser, "button.prev")[0].get_attribute("disabled") is not None
    by_css(browser, "button.next")[0].click()
    wait_names(browser, ["pretrain"], "page 2 of 2")
    assert "cursor=" in browser.current_url
    assert by_css(browser, "button.next")[0].get_attribute("disabled") is not None
    assert by_css(browser, ".page-number")[0].text.endswith("page 2")
    shot("page-2")
    by_css(browser, "button.prev")[0].click()
    wait_names(browser, ["evaluate", "finetune"], "back to page 1")
    assert "cursor=" not in browser.current_url

    by_css(browser, f"tr[data-task-id='{site.task('finetune')}'] a.task-link")[0].click()
    chrome.wait_until(lambda: browser.current_url.endswith(f"/tasks/{site.task('finetune')}"), "the task page")
    no_script_errors(browser)


# -- a task ---------------------------------------------------------------------------------------
def _drawn_pixels(driver, figure) -> int:
    """Pixels the chart's canvas has painted (uPlot draws its series and axes on one canvas)."""
    return driver.execute_script("""
        const canvas = arguments[0].querySelector("canvas");
        if (!canvas || !canvas.width) return 0;
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
        return painted;""", figure)


def test_task_page_shows_models_artifacts_previews_and_charts(site: Site, browser, shot):
    finetune = site.made["finetune"]
    browser.get(f"{site.url}/tasks/{finetune['task']}")
    chrome.wait_until(lambda: by_css(browser, "#output-models table.snapshots tbody tr"), "the output models")
    assert browser.find_element("css selector", "h1").text.endswith("finetune")

    model = by_css(browser, f".output-model[data-model-id='{finetune['model']}']")[0]
    assert model.find_element("css selector", "h3 a").get_attribute("href").endswith(f"/models/{finetune['model']}")
    rows = model.find_elements("css selector", "tbody tr")
    assert [r.find_element("css selector", ".seq").text for r in rows] == ["1", "2", "3"]
    assert [r.find_element("css selector", "code.digest").get_attribute("title") for r in rows] == finetune["digests"]
    assert [r.find_element("css selector", "code.digest").text for r in rows] == [d[7:19] for d in finetune["digests"]]
    # the sha256 was computed for seq 1 only (Model.sha256): shown beside its digest, nothing for the others
    assert [[c.get_attribute("title") for c in r.find_elements("css selector", "code.sha")] for r in rows] == [
        [finetune["shas"][0]], [], []]
    assert [r.find_element("css selector", ".status").text for r in rows] == ["stored"] * 3
    assert all("/api/snapshots/" in r.find_element("css selector", "a.download").get_attribute("href") for r in rows)

    [loaded] = by_css(browser, "#input-models tbody tr")
    link = loaded.find_element("css selector", "a.model-link")
    assert link.text == "pretrained" and link.get_attribute("href").endswith(f"/models/{site.model('pretrain')}")
    assert "seq 2" in loaded.text
    loaded_digest = loaded.find_element("css selector", "code.digest").get_attribute("title")
    assert loaded_digest == site.made["pretrain"]["digests"][1]

    image = chrome.wait_until(lambda: by_css(browser, "tr[data-artifact='sample image'] img.thumb"), "the image preview")[0]
    size = chrome.wait_until(lambda: browser.execute_script(
        "const i = arguments[0]; return i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null;", image),
        "the image preview to load")
    assert size == [48, 32]  # the PIL image the task uploaded, decoded by the browser
    table = chrome.wait_until(lambda: by_css(browser, "tr[data-artifact='per-class scores'] .table-preview table"),
                              "the DataFrame preview")[0]
    assert [th.text for th in table.find_elements("css selector", "thead th")][-3:] == ["label", "precision", "recall"]
    assert "dog" in table.text and "0.75" in table.text
    pre = chrome.wait_until(lambda: by_css(browser, "tr[data-artifact='label map'] pre.text-preview"), "the JSON preview")[0]
    assert json.loads(pre.text) == {"cat": 0, "dog": 1, "bird": 2}
    assert all("/api/artifacts/" in a.get_attribute("href") for a in by_css(browser, "#artifacts a.download"))

    charts = {t: chrome.wait_until(lambda t=t: by_css(browser, f"figure.chart[data-title='{t}'][data-drawn]"), f"the {t} chart")[0]
              for t in ("loss", "accuracy")}
    assert charts["loss"].get_attribute("data-drawn") == "2"  # train and validation: two lines on one chart
    assert "train" in charts["loss"].text and "validation" in charts["loss"].text
    for title, figure in charts.items():
        assert _drawn_pixels(browser, figure) > 2000, f"the {title} chart's canvas is blank"
    shot("task-page")

    params = by_css(browser, "#parameters")[0].text
    assert "hyperparameters/lr" in params and "0.01" in params and "encoder" in params
    assert "chain_store.py finetune" in by_css(browser, "#run-info")[0].text
    assert "0.86" in by_css(browser, "#single-values")[0].text
    lineage = by_css(browser, "a.lineage-link")[0].get_attribute("href")
    assert lineage.endswith(f"/lineage?task={finetune['task']}")
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    shot("task-page-bottom")
    no_script_errors(browser)


# -- the lineage graph -----------------------------------------------------------------------------
def _center_x(driver, element) -> float:
    return driver.execute_script("const r = arguments[0].getBoundingClientRect(); return r.left + r.width / 2;", element)


def _view_box(driver) -> list[float]:
    return [float(v) for v in driver.execute_script(
        "return document.querySelector('svg#lineage-graph').getAttribute('viewBox');").split()]


def test_lineage_graph_of_the_chain_draws_every_node_and_edge_and_exports_svg(site: Site, browser, shot):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin

    browser.get(f"{site.url}/lineage?task={site.task('evaluate')}")
    nodes = chrome.wait_until(lambda: by_css(browser, "svg#lineage-graph a.node"), "the graph's nodes")
    shot("lineage")
    kinds = {n.get_attribute("data-node-id"): n.get_attribute("data-kind") for n in nodes}
    tasks = {f"task:{site.task(s)}" for s in ("pretrain", "finetune", "evaluate")}
    models = {f"model:{site.model(s)}" for s in ("pretrain", "finetune")}
    assert kinds == {**{t: "task" for t in tasks}, **{m: "model" for m in models}}
    root = by_css(browser, "a.node.root")
    assert [n.get_attribute("data-node-id") for n in root] == [f"task:{site.task('evaluate')}"]

    edges = {(e.get_attribute("data-source"), e.get_attribute("data-target"), e.get_attribute("data-kind")): e
             for e in by_css(browser, "svg#lineage-graph g.edge")}
    pre_task, pre_model = f"task:{site.task('pretrain')}", f"model:{site.model('pretrain')}"
    ft_task, ft_model = f"task:{site.task('finetune')}", f"model:{site.model('finetune')}"
    ev_task = f"task:{site.task('evaluate')}"
    assert set(edges) == {(pre_task, pre_model, "produced"), (pre_model, ft_task, "loaded"),
                          (ft_task, ft_model, "produced"), (ft_model, ev_task, "loaded")}
    assert edges[(pre_model, ft_task, "loaded")].text == "seq 2"  # finetune loaded pretrained's 2nd snapshot
    assert edges[(ft_model, ev_task, "loaded")].text == "seq 3"   # the copy holds finetuned's 3rd snapshot's bytes
    for edge in edges.values():  # every edge is drawn: a path with a real length
        assert browser.execute_script("return arguments[0].querySelector('path').getTotalLength();", edge) > 20

    by_id = {n.get_attribute("data-node-id"): n for n in nodes}
    chain = [pre_task, pre_model, ft_task, ft_model, ev_task]
    xs = [_center_x(browser, by_id[n]) for n in chain]
    assert xs == sorted(xs) and len(set(xs)) == 5, f"not laid out left to right: {dict(zip(chain, xs))}"
    graph_box = browser.execute_script("return arguments[0].getBoundingClientRect().toJSON();", by_css(browser, "svg#lineage-graph")[0])
    for node in nodes:  # all five on screen
        box = browser.execute_script("return arguments[0].getBoundingClientRect().toJSON();", node)
        assert box["width"] > 60 and box["height"] > 20
        assert graph_box["left"] <= box["left"] and box["right"] <= graph_box["right"]

    before = set(site.downloads.iterdir())
    by_css(browser, "#export-svg")[0].click()
    exported = chrome.wait_for_download(site.downloads, "lineage-*.svg", before=before)
    document = ET.parse(exported).getroot()  # well-formed XML, standalone
    assert document.tag == f"{SVG_NS}svg"
    assert float(document.get("width")) > 300 and document.get("viewBox").startswith("0 0 ")
    style = document.find(f"{SVG_NS}style")
    assert style is not None and ".node.task rect.box" in style.text
    exported_nodes = {a.get("data-node-id"): a.get("href") for a in document.iter(f"{SVG_NS}a")}
    assert set(exported_nodes) == tasks | models
    assert exported_nodes[pre_task] == f"{site.url}/tasks/{site.task('pretrain')}"  # links work outside the app
    assert len(list(document.iter(f"{SVG_NS}path"))) >= 4

    graph = by_css(browser, "svg#lineage-graph")[0]
    start = _view_box(browser)
    ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(graph), 0, -400).perform()
    chrome.wait_until(lambda: _view_box(browser)[2] < start[2] * 0.8, "the wheel to zoom in")
    zoomed = _view_box(browser)
    empty_spot = (-graph.size["width"] // 2 + 5, -graph.size["height"] // 2 + 5)  # top-left corner: no node
    ActionChains(browser).move_to_element_with_offset(graph, *empty_spot).click_and_hold() \
        .move_by_offset(60, 0).move_by_offset(60, 0).release().perform()
    chrome.wait_until(lambda: _view_box(browser)[0] < zoomed[0] - 10, "a drag to pan the view")
    assert "/lineage?" in browser.current_url  # the drag opened nothing
    shot("lineage-zoomed")
    by_css(browser, ".graph-toolbar button")[2].click()  # Fit
    chrome.wait_until(lambda: _view_box(browser)[2] >= start[2] * 0.99, "Fit to show the whole graph again")

    by_css(browser, f"a.node[data-node-id='{ft_model}']")[0].click()
    chrome.wait_until(lambda: browser.current_url.endswith(f"/models/{site.model('finetune')}"), "the model page from its node")
    shot("model-from-graph")
    no_script_errors(browser)


def _scale(driver) -> float:
    return float(driver.execute_script("return document.querySelector('svg#lineage-graph').dataset.scale;"))


def test_a_graph_of_two_hundred_nodes_opens_readable_and_zooms_out_to_all_of_it(wide_site: Site, browser, shot):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin

    browser.get(f"{wide_site.url}/lineage?task={wide_site.task('base')}")
    chrome.wait_until(lambda: len(by_css(browser, "svg#lineage-graph a.node")) == 2 * WIDE + 2, "all 202 nodes", timeout=60)
    counts = browser.execute_script("""const g = document.querySelector('svg#lineage-graph');
        return [g.querySelectorAll('a.node.task').length, g.querySelectorAll('a.node.model').length,
                g.querySelectorAll('g.edge.loaded').length, g.querySelectorAll('g.edge.produced').length,
                Number(g.dataset.layoutMs)];""")
    assert counts[:4] == [WIDE + 1, WIDE + 1, WIDE, WIDE + 1]
    assert counts[4] < 15000, f"the layout of 202 nodes took {counts[4]} ms"
    shot("wide-start")

    # Opens at a readable scale around the root, not shrunk to fit 202 nodes into one screen.
    assert _scale(browser) >= 0.75
    label_height = browser.execute_script(
        "return document.querySelector('a.node.root text.label').getBoundingClientRect().height;")
    assert label_height >= 10, f"the root's label is {label_height:.1f} px high"
    graph = by_css(browser, "svg#lineage-graph")[0]
    frame = browser.execute_script("return arguments[0].getBoundingClientRect().toJSON();", graph)
    root_box = browser.execute_script("return document.querySelector('a.node.root').getBoundingClientRect().toJSON();")
    assert frame["left"] <= root_box["left"] and root_box["right"] <= frame["right"]
    assert frame["top"] <= root_box["top"] and root_box["bottom"] <= frame["bottom"]

    by_css(browser, ".graph-toolbar button")[2].click()  # Fit: every node inside the frame
    chrome.wait_until(lambda: _scale(browser) < 0.5, "Fit to zoom out")
    outside = browser.execute_script("""const f = arguments[0].getBoundingClientRect();
        return [...document.querySelectorAll('a.node')].filter((n) => { const r = n.getBoundingClientRect();
            return r.left < f.left - 1 || r.right > f.right + 1 || r.top < f.top - 1 || r.bottom > f.bottom + 1; }).length;""", graph)
    assert outside == 0
    shot("wide-fit")
    fitted = _scale(browser)
    ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(graph), 0, -600).perform()
    chrome.wait_until(lambda: _scale(browser) > fitted * 1.5, "the wheel to zoom in")
    shot("wide-zoomed")
    no_script_errors(browser)


# -- a model -------------------------------------------------------------------------------------
def test_model_page_lists_snapshots_and_tasks_and_downloads_a_verified_snapshot(site: Site, browser, shot):
    finetune = site.made["finetune"]
    browser.get(f"{site.url}/models/{finetune['model']}")
    rows = chrome.wait_until(lambda: by_css(browser, "#snapshots tbody tr"), "the snapshots")
    assert [r.find_element("css selector", ".seq").text for r in rows] == ["1", "2", "3"]
    assert [r.find_element("css selector", "code.digest").text for r in rows] == [d[7:] for d in finetune["digests"]]
    assert rows[0].find_element("css selector", "code.sha").text == finetune["shas"][0]  # computed: the whole sha256
    assert all(r.find_element("css selector", "code.uri").text for r in rows)  # where each is stored
    produced_by = by_css(browser, ".page-head a.task-link")[0]
    assert produced_by.text == "finetune" and produced_by.get_attribute("href").endswith(f"/tasks/{finetune['task']}")
    [loader] = by_css(browser, "#loaded-by tbody tr")
    assert loader.find_element("css selector", "a.task-link").get_attribute("href").endswith(f"/tasks/{site.task('evaluate')}")
    assert "seq 3" in loader.text
    assert by_css(browser, "a.lineage-link")[0].get_attribute("href").endswith(f"/lineage?model={finetune['model']}")
    shot("model-page")

    before = set(site.downloads.iterdir())
    rows[2].find_element("css selector", "a.download").click()
    path = chrome.wait_for_download(site.downloads, before=before)
    assert chrome.sha256_of(path) == finetune["shas"][2] == site.made["evaluate"]["copy_sha"]
    no_script_errors(browser)


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("query, expected", [
    ("?sort=bogus", "sort='bogus' is not a sort"),         # the API's 400 naming the parameter, shown by the page
    ("?cursor=not-a-cursor", "cursor= is not a cursor"),
])
def test_the_task_list_shows_an_api_error_as_a_message(site: Site, browser, shot, query, expected):
    browser.get(site.url + "/" + query)
    alert = chrome.wait_until(lambda: by_css(browser, "#task-table .error[role=alert]"), f"an error message for {query}")[0]
    assert expected in alert.text and "HTTP 400" in alert.text
    assert "Traceback" not in browser.page_source
    shot("error")


@pytest.mark.parametrize("path, expected", [
    (f"/tasks/{'0' * 32}", f"no task with id '{'0' * 32}'"),
    ("/lineage", "task=ID"),
])
def test_a_page_that_cannot_be_shown_says_why(site: Site, browser, shot, path, expected):
    browser.get(site.url + path)
    text = chrome.wait_until(lambda: browser.find_element("css selector", "body").text, f"the page {path}")
    assert expected in text.lower() or expected in text
    assert "Traceback" not in browser.page_source
    shot("cannot-show")
