// A model (/models/{id}): its snapshots, the task that produced it and every task that loaded it.
import {
  api, downloadLink, el, errorBox, facts, fill, formatBytes, formatTime, section, setTitle, snapshotHash, statusBadge,
  table, tagChips, taskLink,
} from "./dom.js";

export const SNAPSHOT_COLUMNS = {
  short: ["seq", "iteration", "size", "digest", "status", "saved", ""],
  full: ["seq", "iteration", "size", "digest", "status", "stored at", "saved", ""],
};

// Table rows of snapshots; `full` shows the whole digest (and sha256, when computed) and adds the stored
// URI (the model page).
export function snapshotRows(snapshots, full) {
  return snapshots.map((s) => [
    el("span", { class: "seq" }, String(s.seq)),
    s.iteration ?? "",
    formatBytes(s.size),
    snapshotHash(s, full),
    [statusBadge(s.status, s.reason), s.reason ? el("div", { class: "reason" }, s.reason) : null],
    ...(full ? [s.uri ? el("code", { class: "uri" }, s.uri) : ""] : []),
    formatTime(s.stored_at ?? s.created),
    downloadLink(s.download),
  ]);
}

export async function renderModelPage(root, modelId) {
  document.body.dataset.page = "model";
  setTitle("model");
  root.replaceChildren(el("p", { class: "loading" }, "Loading the model…"));
  let data;
  try {
    data = await api(`/api/models/${encodeURIComponent(modelId)}`);
  } catch (err) {
    setTitle("model not found");
    root.replaceChildren(errorBox(`model ${modelId}`, err), el("p", {}, el("a", { href: "/" }, "Back to the task list")));
    return;
  }
  const { model, task, snapshots, loaded_by: loadedBy } = data;
  setTitle(model.name, model.project);
  fill(root,
    el("header", { class: "page-head" },
      el("p", { class: "crumbs" }, el("a", { href: "/" }, "Tasks"), " / ", model.project, " / model"),
      el("h1", {}, model.name),
      el("p", { class: "actions" }, el("a", { href: `/lineage?model=${encodeURIComponent(model.id)}`, class: "lineage-link" }, "Lineage graph")),
      facts([
        ["id", el("code", {}, model.id)],
        ["framework", model.framework],
        ["origin", model.origin],
        ["produced by", task ? [taskLink(task), el("span", { class: "muted" }, ` (${task.project})`)] : el("span", { class: "muted" }, "no task (imported)")],
        ["tags", tagChips(model.tags)],
        ["created", formatTime(model.created)],
        ["updated", formatTime(model.updated)],
        ["labels", model.labels && Object.keys(model.labels).length ? el("code", {}, JSON.stringify(model.labels)) : ""],
      ])),
    model.config_text ? section("Design", el("pre", {}, model.config_text), { id: "design" }) : null,
    section(`Snapshots (${snapshots.length})`,
      snapshots.length ? table(SNAPSHOT_COLUMNS.full, snapshotRows(snapshots, true), { class: "grid snapshots" })
        : el("p", { class: "empty" }, "No snapshots."), { id: "snapshots" }),
    section("Loaded by", loadedBy.length ? table(["task", "project", "status", "snapshot", "loaded"], loadedBy.map((l) => [
      taskLink(l.task), l.task ? l.task.project : "", l.task ? statusBadge(l.task.status) : "",
      l.snapshot_seq !== null && l.snapshot_seq !== undefined ? `seq ${l.snapshot_seq}` : "", formatTime(l.loaded_at),
    ]), { class: "grid loaded-by" }) : el("p", { class: "empty" }, "No task has loaded this model."), { id: "loaded-by" }),
  );
}
