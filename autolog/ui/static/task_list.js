// The task list (/): filters, sortable columns and keyset paging, all kept in the URL query
// (?project=&status=&tag=&q=&sort=&cursor=, and limit= for another page size) so a filtered view can be
// linked and reloaded.
// "Previous" walks back a stack of the cursors that led here, kept in history.state (it survives a
// reload); a page opened from a link with a cursor but no stack goes back to the first page.
import {
  api, el, errorBox, formatDuration, formatTime, setTitle, statusBadge, tagChips, taskLink,
} from "./dom.js";

const FILTERS = ["project", "status", "tag", "q"];
const KEPT = [...FILTERS, "limit"]; // in the URL, as given
const STATUSES = ["running", "completed", "failed"];
// Column -> the API's sort key (null: not sortable). The first sort of a column is its `first` order.
const COLUMNS = [
  { title: "Status", sort: "status", first: "status" },
  { title: "Name", sort: "name", first: "name" },
  { title: "Project", sort: null },
  { title: "Started", sort: "created", first: "-created" },
  { title: "Duration", sort: "duration", first: "-duration" },
  { title: "Tags", sort: null },
  { title: "User", sort: null },
  { title: "Host", sort: null },
];
const DEFAULT_SORT = "-created";
const PAGE_SIZE = 50;

function readState() {
  const params = new URLSearchParams(location.search);
  const state = { sort: params.get("sort") || DEFAULT_SORT, cursor: params.get("cursor") || "" };
  for (const key of KEPT) state[key] = params.get(key) || "";
  return state;
}

function queryOf(state, withCursor = true) {
  const params = new URLSearchParams();
  for (const key of KEPT) if (state[key]) params.set(key, state[key]);
  if (state.sort && state.sort !== DEFAULT_SORT) params.set("sort", state.sort);
  if (withCursor && state.cursor) params.set("cursor", state.cursor);
  return params.toString();
}

function stack() {
  return (history.state && Array.isArray(history.state.cursors)) ? history.state.cursors : [];
}

// Show `state`: a new history entry (so Back works) whose stack is `cursors`.
function go(root, state, cursors) {
  const query = queryOf(state);
  history.pushState({ cursors }, "", query ? `/?${query}` : "/");
  load(root);
}

export async function renderTaskList(root) {
  setTitle("tasks");
  document.body.dataset.page = "tasks";
  window.onpopstate = () => load(root);
  root.replaceChildren(
    el("h1", {}, "Tasks"),
    el("div", { id: "task-filters" }),
    el("div", { id: "task-table" }, el("p", { class: "loading" }, "Loading tasks…")),
  );
  await load(root);
}

let latest = 0; // a slower answer to an earlier query must not replace the current one

async function load(root) {
  const ticket = ++latest;
  const state = readState();
  const filters = root.querySelector("#task-filters");
  const holder = root.querySelector("#task-table");
  holder.setAttribute("aria-busy", "true");
  const query = new URLSearchParams(queryOf(state));
  query.set("sort", state.sort);
  if (!state.limit) query.set("limit", String(PAGE_SIZE));
  const [projects, page] = await Promise.allSettled([api("/api/projects"), api(`/api/tasks?${query}`)]);
  if (ticket !== latest) return;
  filters.replaceChildren(filterForm(root, state, projects));
  if (page.status === "rejected") {
    holder.replaceChildren(errorBox("the tasks", page.reason));
  } else {
    holder.replaceChildren(taskTable(root, state, page.value), pager(root, state, page.value));
  }
  holder.removeAttribute("aria-busy");
  document.body.dataset.loaded = String(Date.now());
}

function filterForm(root, state, projects) {
  const projectOptions = projects.status === "fulfilled"
    ? projects.value.projects.map((p) => el("option", { value: p.name, selected: p.name === state.project }, `${p.name} (${p.tasks})`))
    : [];
  if (state.project && !projectOptions.some((o) => o.value === state.project)) {
    projectOptions.push(el("option", { value: state.project, selected: true }, state.project));
  }
  const form = el("form", { class: "filters", role: "search" },
    el("label", {}, "Project ", el("select", { name: "project" }, el("option", { value: "" }, "all projects"), projectOptions)),
    el("label", {}, "Status ", el("select", { name: "status" }, el("option", { value: "" }, "any"),
      STATUSES.map((s) => el("option", { value: s, selected: s === state.status }, s)))),
    el("label", {}, "Tag ", el("input", { name: "tag", type: "text", value: state.tag, placeholder: "exact tag", size: 12 })),
    el("label", {}, "Search ", el("input", { name: "q", type: "search", value: state.q, placeholder: "name or project", size: 24 })),
    el("button", { type: "submit" }, "Apply"),
    (FILTERS.some((k) => state[k])) ? el("a", { href: "/", class: "clear" }, "clear filters") : null,
  );
  const apply = () => {
    const next = { ...state, cursor: "" };
    for (const key of FILTERS) next[key] = form.elements[key].value.trim();
    go(root, next, []);
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
  for (const name of ["project", "status"]) form.elements[name].addEventListener("change", apply);
  const errors = projects.status === "rejected" ? errorBox("the projects", projects.reason) : null;
  return el("div", {}, form, errors);
}

function taskTable(root, state, page) {
  if (!page.tasks.length) {
    const filtered = FILTERS.some((k) => state[k]);
    return el("p", { class: "empty" }, filtered ? "No task matches these filters." : "No tasks yet: run a script that calls Task.init().");
  }
  const header = COLUMNS.map((col) => {
    if (!col.sort) return el("th", { scope: "col" }, col.title);
    const active = state.sort.replace(/^-/, "") === col.sort;
    const descending = state.sort.startsWith("-");
    const next = active ? (descending ? col.sort : `-${col.sort}`) : col.first;
    return el("th", { scope: "col", "aria-sort": active ? (descending ? "descending" : "ascending") : "none" },
      el("button", { type: "button", class: "sort", "data-sort": col.sort, onclick: () => go(root, { ...state, sort: next, cursor: "" }, []) },
        col.title, active ? (descending ? " ▼" : " ▲") : ""));
  });
  const rows = page.tasks.map((t) => el("tr", { "data-task-id": t.id },
    el("td", {}, statusBadge(t.status)),
    el("td", {}, taskLink(t)),
    el("td", {}, t.project),
    el("td", { class: "nowrap" }, formatTime(t.created)),
    el("td", { class: "num" }, formatDuration(t.duration)),
    el("td", {}, tagChips(t.tags)),
    el("td", {}, t.user || ""),
    el("td", {}, t.host || ""),
  ));
  return el("table", { class: "grid tasks" }, el("thead", {}, el("tr", {}, header)), el("tbody", {}, rows));
}

function pager(root, state, page) {
  const cursors = stack();
  // A page opened from a link with a cursor has no stack: its number is unknown.
  const number = !state.cursor ? "page 1" : (cursors.length ? `page ${cursors.length + 1}` : "a later page");
  const previous = () => {
    const back = cursors.slice(0, -1);
    go(root, { ...state, cursor: cursors.length ? cursors[cursors.length - 1] : "" }, back);
  };
  const next = () => go(root, { ...state, cursor: page.next_cursor }, [...cursors, state.cursor]);
  const total = page.total === null || page.total === undefined ? "" : `${page.total} task${page.total === 1 ? "" : "s"} · `;
  return el("nav", { class: "pager", "aria-label": "pages" },
    el("button", { type: "button", class: "prev", disabled: !state.cursor, onclick: previous }, "← Previous"),
    el("span", { class: "page-number" }, `${total}${number}`),
    el("button", { type: "button", class: "next", disabled: !page.next_cursor, onclick: next }, "Next →"));
}
