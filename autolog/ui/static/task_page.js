// A task (/tasks/{id}): run info, parameters, configuration, scalar charts, single values,
// artifacts with previews, and the models it loaded and saved.
import {
  api, downloadLink, el, errorBox, facts, fill, formatBytes, formatDuration, formatTime, formatValue, modelLink,
  section, setTitle, shortSha, snapshotHash, statusBadge, table, tagChips,
} from "./dom.js";
import { scalarCharts } from "./charts.js";
import { snapshotRows, SNAPSHOT_COLUMNS } from "./model_page.js";

export async function renderTaskPage(root, taskId) {
  document.body.dataset.page = "task";
  setTitle("task");
  root.replaceChildren(el("p", { class: "loading" }, "Loading the task…"));
  let data;
  try {
    data = await api(`/api/tasks/${encodeURIComponent(taskId)}`);
  } catch (err) {
    setTitle("task not found");
    root.replaceChildren(errorBox(`task ${taskId}`, err), el("p", {}, el("a", { href: "/" }, "Back to the task list")));
    return;
  }
  const task = data.task;
  setTitle(task.name, task.project);
  fill(root,
    header(task),
    scalars(task.id, data.scalars),
    singleValues(data.single_values),
    inputModels(data.input_models),
    outputModels(data.output_models),
    artifacts(data.artifacts),
    parameters(data.parameters),
    configuration(data.configuration),
    runInfo(data.run_info),
  );
}

function header(task) {
  return el("header", { class: "page-head" },
    el("p", { class: "crumbs" }, el("a", { href: "/" }, "Tasks"), " / ",
      el("a", { href: `/?project=${encodeURIComponent(task.project)}` }, task.project)),
    el("h1", {}, statusBadge(task.status), " ", task.name),
    el("p", { class: "actions" }, el("a", { href: `/lineage?task=${encodeURIComponent(task.id)}`, class: "lineage-link" }, "Lineage graph")),
    task.status_message ? el("p", { class: "error status-message", role: "alert" }, task.status_message) : null,
    facts([
      ["id", el("code", {}, task.id)],
      ["tags", tagChips(task.tags)],
      ["started", formatTime(task.created)],
      ["ended", formatTime(task.ended)],
      ["duration", formatDuration(task.duration)],
      ["type", task.task_type],
      ["user", task.user],
      ["host", task.host],
      ["output uri", task.output_uri ? el("code", {}, task.output_uri) : ""],
      ["comment", task.comment],
    ]));
}

function runInfo(info) {
  if (!info) return null;
  const packages = Object.entries(info.packages || {}).sort(([a], [b]) => a.localeCompare(b));
  const argv = Array.isArray(info.argv) ? info.argv.map(shellQuote).join(" ") : info.argv;
  return section("Run", [
    facts([
      ["command", argv ? el("code", {}, argv) : ""],
      ["script", info.script ? el("code", {}, info.script) : ""],
      ["working directory", info.cwd ? el("code", {}, info.cwd) : ""],
      ["git commit", info.git_commit ? el("code", {}, info.git_commit) : ""],
      ["git branch", info.git_branch],
      ["python", info.python],
      ["host", info.host],
      ["user", info.user],
      ["pid", info.pid],
    ]),
    packages.length ? el("details", { class: "packages" },
      el("summary", {}, `Packages (${packages.length})`),
      table(["package", "version"], packages.map(([name, version]) => [name, version]))) : null,
  ], { id: "run-info" });
}

function shellQuote(arg) {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${String(arg).replace(/'/g, "'\\''")}'`;
}

function parameters(params) {
  const entries = Object.entries(params || {});
  if (!entries.length) return null;
  return section("Parameters", table(["name", "value"], entries.map(([k, v]) => [el("code", {}, k), formatValue(v)])), { id: "parameters" });
}

function configuration(config) {
  const entries = Object.entries(config || {});
  if (!entries.length) return null;
  return section("Configuration", entries.map(([name, c]) => el("div", { class: "config" },
    el("h3", {}, name, c.type ? el("span", { class: "muted" }, ` (${c.type})`) : null),
    el("pre", {}, c.text || ""))), { id: "configuration" });
}

function scalars(taskId, summary) {
  if (!summary || !summary.length) return null;
  const holder = el("div", {}, el("p", { class: "loading" }, "Loading the charts…"));
  api(`/api/tasks/${encodeURIComponent(taskId)}/scalars?max_points=2000`)
    .then((data) => holder.replaceChildren(scalarCharts(data.series)))
    .catch((err) => holder.replaceChildren(errorBox("the scalar series", err)));
  const rows = summary.map((s) => [s.title, s.series, s.count, formatValue(s.last), formatValue(s.min), formatValue(s.max), s.last_iteration ?? ""]);
  return section("Scalars", [holder,
    el("details", { class: "scalar-summary" }, el("summary", {}, `Summary of ${summary.length} series`),
      table(["title", "series", "points", "last", "min", "max", "last iteration"], rows))], { id: "scalars" });
}

function singleValues(values) {
  const entries = Object.entries(values || {});
  if (!entries.length) return null;
  return section("Single values", table(["name", "value"], entries.map(([k, v]) => [k, formatValue(v)])), { id: "single-values" });
}

function artifacts(list) {
  if (!list || !list.length) return null;
  const rows = list.map((a) => el("tr", { "data-artifact": a.name },
    el("td", {}, a.name),
    el("td", {}, a.kind || ""),
    el("td", { class: "num" }, formatBytes(a.size)),
    el("td", {}, shortSha(a.sha256)),
    el("td", { class: "nowrap" }, formatTime(a.created)),
    el("td", { class: "preview" }, preview(a)),
    el("td", {}, downloadLink(a.download)),
  ));
  return section("Artifacts", el("table", { class: "grid artifacts" },
    el("thead", {}, el("tr", {}, ["name", "kind", "size", "sha256", "created", "preview", ""].map((c) => el("th", { scope: "col" }, c)))),
    el("tbody", {}, rows)), { id: "artifacts" });
}

function preview(artifact) {
  const holder = el("div", { class: "preview-box" }, artifact.preview_text ? el("span", { class: "muted" }, artifact.preview_text) : "");
  if (!artifact.preview) return holder;
  api(artifact.preview).then((p) => {
    const shown = previewOf(p, artifact);
    if (shown) holder.replaceChildren(shown);
  }).catch((err) => holder.replaceChildren(errorBox("the preview", err)));
  return holder;
}

function previewOf(p, artifact) {
  if (p.kind === "image") {
    return el("a", { href: p.url, target: "_blank", rel: "noopener" },
      el("img", { src: p.url, alt: artifact.name, class: "thumb", loading: "lazy" }));
  }
  if (p.kind === "table") {
    return el("div", { class: "table-preview" }, table(p.columns.map(String), p.rows.map((r) => r.map(formatValue))));
  }
  if (p.kind === "json" || p.kind === "text") return el("pre", { class: "text-preview" }, p.text);
  return null;
}

function inputModels(list) {
  if (!list || !list.length) return null;
  const rows = list.map(({ model, snapshot, loaded_at }) => [
    modelLink(model),
    snapshot ? `seq ${snapshot.seq}` : "",
    model.framework || "",
    snapshot ? snapshotHash(snapshot) : "",
    model.task_id ? el("a", { href: `/tasks/${encodeURIComponent(model.task_id)}` }, "producing task") : el("span", { class: "muted" }, model.origin || "imported"),
    formatTime(loaded_at),
  ]);
  return section("Input models", table(["model", "snapshot", "framework", "digest", "from", "loaded"], rows, { class: "grid input-models" }), { id: "input-models" });
}

function outputModels(list) {
  if (!list || !list.length) return null;
  return section("Output models", list.map(({ model, snapshots }) => el("div", { class: "output-model", "data-model-id": model.id },
    el("h3", {}, modelLink(model), model.framework ? el("span", { class: "muted" }, ` · ${model.framework}`) : null,
      el("span", { class: "muted" }, ` · ${snapshots.length} snapshot${snapshots.length === 1 ? "" : "s"}`)),
    table(SNAPSHOT_COLUMNS.short, snapshotRows(snapshots, false), { class: "grid snapshots" }))), { id: "output-models" });
}
