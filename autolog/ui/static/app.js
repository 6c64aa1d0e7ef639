// autolog ui: every page route returns the same shell (index.html); this module picks the page from
// location.pathname and renders it into <main id="app">. Each page fetches the JSON API
// (/api/..., see the server in autolog/ui/) and shows API errors as a message on the page.
import { el, errorBox, setTitle } from "./dom.js";
import { renderTaskList } from "./task_list.js";
import { renderTaskPage } from "./task_page.js";
import { renderModelPage } from "./model_page.js";
import { renderLineagePage } from "./lineage.js";

const ROUTES = [
  [/^\/$/, (root) => renderTaskList(root)],
  [/^\/tasks\/([^/]+)\/?$/, (root, m) => renderTaskPage(root, decodeURIComponent(m[1]))],
  [/^\/models\/([^/]+)\/?$/, (root, m) => renderModelPage(root, decodeURIComponent(m[1]))],
  [/^\/lineage\/?$/, (root) => renderLineagePage(root, new URLSearchParams(location.search))],
];

async function route() {
  const root = document.getElementById("app");
  document.body.dataset.page = "";
  for (const [pattern, render] of ROUTES) {
    const match = location.pathname.match(pattern);
    if (!match) continue;
    try {
      await render(root, match);
    } catch (err) {
      root.replaceChildren(errorBox("this page", err));
      console.error(err);
    }
    document.body.dataset.ready = "1";
    return;
  }
  setTitle("not found");
  root.replaceChildren(el("div", { class: "error", role: "alert" },
    `No page at ${location.pathname}. `, el("a", { href: "/" }, "Back to the task list")));
  document.body.dataset.ready = "1";
}

route();
