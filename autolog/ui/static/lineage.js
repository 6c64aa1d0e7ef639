// The lineage graph (/lineage?task=ID or ?model=ID): tasks and models laid out left to right by dagre
// and drawn as one SVG. The wheel zooms around the pointer, dragging pans, a click on a node opens its
// page; "Export SVG" downloads a standalone file (its styles are inside the <svg>).
import { api, el, errorBox, fill, setTitle, svg } from "./dom.js";

const NODE_HEIGHT = 46;
const MAX_NODE_WIDTH = 280;
const LABEL_FONT = "600 13px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const SUB_FONT = "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const EDGE_FONT = "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const MIN_FIT_SCALE = 0.75; // below this the text is too small to read: show the root's surroundings instead
const MAX_FIT_SCALE = 1.3;

// Everything the drawing needs, inside the <svg> itself: the exported file looks the same on its own.
const GRAPH_CSS = `
.node { cursor: pointer; }
.node rect.box { stroke-width: 1.5px; }
.node.task rect.box { fill: #eef4ff; stroke: #2563eb; }
.node.model rect.box { fill: #fff4e6; stroke: #d9730d; }
.node.root rect.box { stroke-width: 3.5px; }
.node:hover rect.box, .node:focus rect.box { stroke-width: 3px; fill: #ffffff; }
.node text { pointer-events: none; }
.node text.label { font: ${LABEL_FONT}; fill: #111827; }
.node text.sub { font: ${SUB_FONT}; fill: #4b5563; }
.node tspan.kind { font-weight: 700; font-size: 9.5px; letter-spacing: 0.06em; }
.status-dot { stroke: #ffffff; stroke-width: 1px; fill: #9ca3af; }
.status-dot.status-completed, .status-dot.status-stored { fill: #16a34a; }
.status-dot.status-running, .status-dot.status-pending { fill: #2563eb; }
.status-dot.status-failed { fill: #dc2626; }
.edge path.line { fill: none; stroke-width: 1.6px; }
.edge.produced path.line { stroke: #d9730d; }
.edge.loaded path.line { stroke: #2563eb; stroke-dasharray: 6 3; }
.edge text { font: ${EDGE_FONT}; fill: #374151; }
.edge rect.label-bg { fill: #ffffff; fill-opacity: 0.92; }
#arrow-produced path { fill: #d9730d; }
#arrow-loaded path { fill: #2563eb; }
`;

export async function renderLineagePage(root, params) {
  document.body.dataset.page = "lineage";
  setTitle("lineage");
  const kind = params.get("task") ? "task" : params.get("model") ? "model" : null;
  if (!kind) {
    root.replaceChildren(el("div", { class: "error", role: "alert" },
      "The lineage page needs ?task=ID or ?model=ID. Open it from a task or a model page. ", el("a", { href: "/" }, "Back to the task list")));
    return;
  }
  const id = params.get(kind);
  const query = new URLSearchParams({ [kind]: id });
  for (const extra of ["depth", "max_nodes"]) if (params.get(extra)) query.set(extra, params.get(extra));
  root.replaceChildren(el("p", { class: "loading" }, "Loading the lineage…"));
  let graph;
  try {
    graph = await api(`/api/lineage?${query}`);
  } catch (err) {
    root.replaceChildren(errorBox(`the lineage of ${kind} ${id}`, err), el("p", {}, el("a", { href: "/" }, "Back to the task list")));
    return;
  }
  const rootNode = graph.nodes.find((n) => n.id === graph.root);
  setTitle(`lineage of ${rootNode ? rootNode.label : id}`);
  const view = el("div", { class: "graph-view", id: "lineage-view" });
  const toolbar = el("div", { class: "graph-toolbar" });
  fill(root,
    el("header", { class: "page-head" },
      el("p", { class: "crumbs" }, el("a", { href: "/" }, "Tasks"), " / lineage"),
      el("h1", {}, "Lineage of ", rootNode ? el("a", { href: rootNode.url }, rootNode.label) : id),
      el("p", { class: "muted" }, `${graph.nodes.filter((n) => n.kind === "task").length} tasks, `,
        `${graph.nodes.filter((n) => n.kind === "model").length} models, ${graph.edges.length} edges. `,
        "Scroll to zoom, drag to pan, click a node to open it.")),
    graph.truncated ? el("p", { class: "warning", role: "status" },
      `The graph was cut at ${graph.nodes.length} nodes: open a node's own lineage to see further.`) : null,
    toolbar, view, legend());
  if (!graph.nodes.length) {
    view.replaceChildren(el("p", { class: "empty" }, "Nothing to show."));
    return;
  }
  if (typeof dagre === "undefined") {
    view.replaceChildren(el("p", { class: "error", role: "alert" }, "The graph layout library (dagre) did not load."));
    return;
  }
  const started = performance.now();
  const drawing = drawGraph(graph);
  drawing.svg.dataset.layoutMs = String(Math.round(performance.now() - started));
  view.replaceChildren(drawing.svg);
  const viewport = new Viewport(drawing.svg, drawing.width, drawing.height);
  viewport.start(drawing.rootCenter);
  const name = `lineage-${(rootNode ? rootNode.label : id).replace(/[^\w.-]+/g, "_")}.svg`;
  toolbar.append(
    el("button", { type: "button", onclick: () => viewport.zoomBy(1.25) }, "Zoom in"),
    el("button", { type: "button", onclick: () => viewport.zoomBy(0.8) }, "Zoom out"),
    el("button", { type: "button", onclick: () => viewport.fit() }, "Fit"),
    el("button", { type: "button", id: "export-svg", onclick: () => exportSvg(drawing, name) }, "Export SVG"));
}

function legend() {
  return el("p", { class: "graph-legend" },
    el("span", { class: "swatch task" }), " task ", el("span", { class: "swatch model" }), " model ",
    el("span", { class: "swatch-line produced" }), " saved (produced) ", el("span", { class: "swatch-line loaded" }), " loaded");
}

let measureContext = null;
function textWidth(text, font) {
  measureContext = measureContext || document.createElement("canvas").getContext("2d");
  measureContext.font = font;
  return measureContext.measureText(text).width;
}

function fitText(text, font, max) {
  if (textWidth(text, font) <= max) return text;
  let shown = text;
  while (shown.length > 1 && textWidth(`${shown}…`, font) > max) shown = shown.slice(0, -1);
  return `${shown}…`;
}

function layout(graph) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "LR", nodesep: 22, ranksep: 80, edgesep: 14, marginx: 24, marginy: 24 });
  const known = new Set();
  for (const n of graph.nodes) {
    const label = fitText(n.label || n.id, LABEL_FONT, MAX_NODE_WIDTH - 40);
    const sub = fitText(n.sub || "", SUB_FONT, MAX_NODE_WIDTH - 80);
    const top = textWidth(`${kindOf(n)} · ${sub}`, SUB_FONT) + 36;
    const width = Math.min(MAX_NODE_WIDTH, Math.ceil(Math.max(110, textWidth(label, LABEL_FONT) + 26, top)));
    g.setNode(n.id, { width, height: NODE_HEIGHT, data: n, label, sub });
    known.add(n.id);
  }
  graph.edges.forEach((e, i) => {
    if (!known.has(e.source) || !known.has(e.target)) return;
    const label = e.label || "";
    g.setEdge(e.source, e.target, {
      data: e, label, labelpos: "c", width: label ? textWidth(label, EDGE_FONT) + 10 : 0, height: label ? 16 : 0,
    }, `e${i}`);
  });
  dagre.layout(g);
  return g;
}

function drawGraph(graph) {
  const g = layout(graph);
  const { width, height } = g.graph();
  const edges = svg("g", { class: "edges" });
  for (const e of g.edges()) edges.append(drawEdge(g.edge(e)));
  const nodes = svg("g", { class: "nodes" });
  let rootCenter = { x: width / 2, y: height / 2 };
  for (const id of g.nodes()) {
    const n = g.node(id);
    nodes.append(drawNode(n, n.data.id === graph.root));
    if (n.data.id === graph.root) rootCenter = { x: n.x, y: n.y };
  }
  const root = svg("svg", {
    class: "lineage", id: "lineage-graph", role: "img",
    "aria-label": "lineage graph", "data-width": Math.ceil(width), "data-height": Math.ceil(height),
  },
  svg("style", {}, GRAPH_CSS),
  svg("defs", {}, marker("arrow-produced"), marker("arrow-loaded")),
  edges, nodes);
  return { svg: root, width: Math.ceil(width), height: Math.ceil(height), rootCenter };
}

function marker(id) {
  return svg("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z" }));
}

function kindOf(node) {
  return node.kind === "model" ? "MODEL" : "TASK";
}

function drawNode(n, isRoot) {
  const d = n.data;
  const x = n.x - n.width / 2, y = n.y - n.height / 2;
  const kindClass = d.kind === "model" ? "model" : "task";
  return svg("a", {
    href: d.url, class: `node ${kindClass}${isRoot ? " root" : ""}`, "data-node-id": d.id, "data-kind": kindClass,
    transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`,
  },
  svg("title", {}, [d.label, d.sub, d.status].filter(Boolean).join(" · ")),
  svg("rect", { class: "box", width: n.width, height: n.height, rx: kindClass === "model" ? n.height / 2 : 6 }),
  d.status ? svg("circle", { class: `status-dot status-${d.status}`, cx: 14, cy: 15, r: 4.5 }) : null,
  svg("text", { class: "sub", x: 24, y: 18 }, svg("tspan", { class: "kind" }, kindOf(d)), n.sub ? ` · ${n.sub}` : ""),
  svg("text", { class: "label", x: 12, y: 35 }, n.label));
}

function drawEdge(e) {
  const d = e.data;
  const kind = d.kind === "loaded" ? "loaded" : "produced";
  const group = svg("g", { class: `edge ${kind}`, "data-source": d.source, "data-target": d.target, "data-kind": kind },
    svg("path", { class: "line", d: curve(e.points), "marker-end": `url(#arrow-${kind})` }));
  if (e.label && e.x !== undefined) {
    const w = e.width, h = e.height;
    group.append(
      svg("rect", { class: "label-bg", x: (e.x - w / 2).toFixed(1), y: (e.y - h / 2).toFixed(1), width: w, height: h, rx: 3 }),
      svg("text", { x: e.x.toFixed(1), y: (e.y + 4).toFixed(1), "text-anchor": "middle" }, e.label));
  }
  return group;
}

// A smooth path along dagre's points (a uniform B-spline, as d3's curveBasis): it starts and ends
// exactly at the first and last point, on the nodes' borders, where the arrow goes.
function curve(points) {
  const p = points.map((q) => [q.x, q.y]);
  const f = (v) => v.toFixed(1);
  let d = `M${f(p[0][0])},${f(p[0][1])}`;
  if (p.length === 2) return `${d} L${f(p[1][0])},${f(p[1][1])}`;
  const bezier = (a, b, c) => {
    d += ` C${f((2 * a[0] + b[0]) / 3)},${f((2 * a[1] + b[1]) / 3)} ${f((a[0] + 2 * b[0]) / 3)},${f((a[1] + 2 * b[1]) / 3)}`
      + ` ${f((a[0] + 4 * b[0] + c[0]) / 6)},${f((a[1] + 4 * b[1] + c[1]) / 6)}`;
  };
  d += ` L${f((5 * p[0][0] + p[1][0]) / 6)},${f((5 * p[0][1] + p[1][1]) / 6)}`;
  for (let i = 2; i < p.length; i += 1) bezier(p[i - 2], p[i - 1], p[i]);
  const last = p[p.length - 1];
  bezier(p[p.length - 2], last, last);
  return `${d} L${f(last[0])},${f(last[1])}`;
}

// The visible part of the drawing, as the SVG's viewBox; its aspect ratio follows the element's, so a
// screen pixel maps linearly to drawing units.
class Viewport {
  constructor(element, width, height) {
    this.svg = element;
    this.width = width;
    this.height = height;
    this.view = { x: 0, y: 0, w: width, h: height };
    this.svg.setAttribute("preserveAspectRatio", "none");
    this.listen();
  }

  box() {
    const r = this.svg.getBoundingClientRect();
    return { left: r.left, top: r.top, width: Math.max(r.width, 1), height: Math.max(r.height, 1) };
  }

  apply() {
    const v = this.view;
    this.svg.setAttribute("viewBox", `${v.x.toFixed(1)} ${v.y.toFixed(1)} ${v.w.toFixed(1)} ${v.h.toFixed(1)}`);
    this.svg.dataset.scale = (this.box().width / v.w).toFixed(3);
  }

  // Show the whole graph when it stays readable, else the root's surroundings at a readable scale.
  start(center) {
    const b = this.box();
    const scale = Math.min(b.width / this.width, b.height / this.height);
    if (scale >= MIN_FIT_SCALE) this.fit();
    else this.show(center, MIN_FIT_SCALE);
  }

  fit() {
    const b = this.box();
    const scale = Math.min(b.width / this.width, b.height / this.height, MAX_FIT_SCALE);
    this.show({ x: this.width / 2, y: this.height / 2 }, scale);
  }

  show(center, scale) {
    const b = this.box();
    const w = b.width / scale, h = b.height / scale;
    // Where the drawing is larger than the view, keep the view inside it (no empty half-screen).
    const clamp = (start, size, total) => (size >= total ? total / 2 - size / 2 : Math.min(Math.max(start, 0), total - size));
    this.view = { x: clamp(center.x - w / 2, w, this.width), y: clamp(center.y - h / 2, h, this.height), w, h };
    this.apply();
  }

  zoomBy(factor, clientX, clientY) {
    const b = this.box();
    const v = this.view;
    const fx = clientX === undefined ? 0.5 : (clientX - b.left) / b.width;
    const fy = clientY === undefined ? 0.5 : (clientY - b.top) / b.height;
    const scale = Math.min(Math.max(b.width / (v.w / factor), 0.05), 8);
    const w = b.width / scale, h = b.height / scale;
    const px = v.x + fx * v.w, py = v.y + fy * v.h; // the point under the pointer stays there
    this.view = { x: px - fx * w, y: py - fy * h, w, h };
    this.apply();
  }

  listen() {
    this.svg.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.zoomBy(Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)), e.clientX, e.clientY);
    }, { passive: false });
    let drag = null;
    this.svg.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, view: { ...this.view }, moved: false, id: e.pointerId };
    });
    this.svg.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) {
        drag.moved = true;
        this.svg.setPointerCapture(drag.id);
        this.svg.classList.add("dragging");
      }
      const b = this.box();
      this.view = { ...drag.view, x: drag.view.x - dx * (drag.view.w / b.width), y: drag.view.y - dy * (drag.view.h / b.height) };
      this.apply();
    });
    const end = () => {
      if (drag && drag.moved) {
        // The click that ends a drag must not open the node under the pointer.
        this.svg.addEventListener("click", (c) => { c.preventDefault(); c.stopPropagation(); }, { capture: true, once: true });
        setTimeout(() => this.svg.classList.remove("dragging"), 0);
      }
      drag = null;
    };
    this.svg.addEventListener("pointerup", end);
    this.svg.addEventListener("pointercancel", () => { drag = null; this.svg.classList.remove("dragging"); });
    new ResizeObserver(() => {
      // Keep the drawing's scale and center when the element changes size.
      const b = this.box();
      const scale = Number(this.svg.dataset.scale) || 1;
      const center = { x: this.view.x + this.view.w / 2, y: this.view.y + this.view.h / 2 };
      if (Math.abs(b.width / this.view.w - scale) > 1e-3 || Math.abs(b.height / this.view.h - scale) > 1e-3) this.show(center, scale);
    }).observe(this.svg);
  }
}

// A standalone SVG file of the whole graph: its own viewBox and size, a white background, the styles
// inside, and links that work outside this server's pages.
function exportSvg(drawing, filename) {
  const copy = drawing.svg.cloneNode(true);
  const XLINK = "http://www.w3.org/1999/xlink";
  copy.removeAttribute("class");
  copy.removeAttribute("data-scale");
  copy.setAttribute("viewBox", `0 0 ${drawing.width} ${drawing.height}`);
  copy.setAttribute("width", drawing.width);
  copy.setAttribute("height", drawing.height);
  copy.setAttribute("preserveAspectRatio", "xMidYMid meet");
  copy.insertBefore(svg("rect", { width: "100%", height: "100%", fill: "#ffffff" }), copy.querySelector("g.edges"));
  for (const a of copy.querySelectorAll("a.node")) {
    const absolute = new URL(a.getAttribute("href"), location.href).href;
    a.setAttribute("href", absolute);
    a.setAttributeNS(XLINK, "xlink:href", absolute);
  }
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(copy)}\n`;
  const url = URL.createObjectURL(new Blob([text], { type: "image/svg+xml;charset=utf-8" }));
  const link = el("a", { href: url, download: filename, style: "display:none" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
