// Small helpers every page uses: building DOM nodes (never from HTML strings: every value shown comes
// from the store and is inserted as text), calling the JSON API, formatting values, showing errors.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

// el("a", {href: "/x", class: "link"}, "text", child, ...): attributes starting with "on" are listeners;
// null/undefined/false children are skipped; arrays are flattened.
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

// Replace node's children, skipping null/undefined/false like el() does.
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

function setAttributes(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

// GET a JSON API path. Resolves to the parsed body; rejects with an ApiError carrying the server's
// one-line message ({"error": ..., "status": N}) or what went wrong on the way.
export async function api(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  } catch (err) {
    throw new ApiError(`the autolog ui server did not answer (${err.message}). Is \`autolog ui\` still running?`, 0);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    throw new ApiError(message, response.status);
  }
  if (body === null) throw new ApiError(`${path} did not answer with JSON`, response.status);
  return body;
}

// A clear message in place of what could not be loaded.
export function errorBox(what, err) {
  const status = err && err.status ? ` (HTTP ${err.status})` : "";
  const message = err && err.message ? err.message : String(err);
  return el("div", { class: "error", role: "alert" }, el("strong", {}, `Could not load ${what}${status}: `), message);
}

export function setTitle(...parts) {
  document.title = [...parts.filter(Boolean), "autolog"].join(" · ");
}

export function formatTime(unix) {
  if (unix === null || unix === undefined) return "";
  const d = new Date(unix * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h} h ${m} min` : `${m} min ${r} s`;
}

export function formatBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatValue(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(6).replace(/\.?0+$/, "");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

// A plain sha256 (an artifact's, a snapshot's once computed): its first 12 hex digits, the whole as title.
export function shortSha(sha) {
  return sha ? el("code", { class: "sha", title: sha }, sha.slice(0, 12)) : "";
}

export const DEFAULT_DIGEST = "blake3";

// A snapshot's content digest "<algorithm>:<hex>" as text: its first 12 hex digits (every digit when
// `full`), prefixed with the algorithm when it is not the default (rows written before BLAKE3 say sha256).
export function digestText(digest, full = false) {
  if (!digest) return "";
  const cut = digest.indexOf(":");
  const algorithm = cut < 0 ? "" : digest.slice(0, cut);
  const hex = digest.slice(cut + 1);
  const shown = full ? hex : hex.slice(0, 12);
  return algorithm && algorithm !== DEFAULT_DIGEST ? `${algorithm}:${shown}` : shown;
}

export function shortDigest(digest, full = false) {
  return digest ? el("code", { class: "digest", title: digest }, digestText(digest, full)) : "";
}

// What identifies a snapshot's bytes: its digest, then its plain sha256 when one was computed (unless the
// digest is that sha256 already, as on rows written before BLAKE3).
export function snapshotHash(snapshot, full = false) {
  const { digest, sha256 } = snapshot;
  const extra = sha256 && digest !== `sha256:${sha256}`
    ? el("div", { class: "also-sha256" }, el("span", { class: "muted" }, "sha256 "),
      full ? el("code", { class: "sha", title: sha256 }, sha256) : shortSha(sha256))
    : null;
  return [shortDigest(digest, full), extra];
}

export function statusBadge(status, reason) {
  return el("span", { class: `status status-${status || "unknown"}`, title: reason || null }, status || "unknown");
}

export function tagChips(tags) {
  return (tags || []).map((t) => el("span", { class: "tag" }, t));
}

// A titled section; `body` is a node or list of nodes.
export function section(title, body, attrs = {}) {
  return el("section", { class: "panel", ...attrs }, el("h2", {}, title), body);
}

// A table from column names and rows of cells (each cell a node, text or list).
export function table(columns, rows, attrs = {}) {
  return el("table", { class: "grid", ...attrs },
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))));
}

// Key/value pairs as a definition list; empty values are left out.
export function facts(pairs) {
  return el("dl", { class: "facts" },
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== "" && !(Array.isArray(v) && !v.length))
      .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

export function taskLink(task) {
  return task ? el("a", { href: `/tasks/${encodeURIComponent(task.id)}`, class: "task-link" }, task.name || task.id) : "";
}

export function modelLink(model) {
  return model ? el("a", { href: `/models/${encodeURIComponent(model.id)}`, class: "model-link" }, model.name || model.id) : "";
}

export function downloadLink(url, text = "download") {
  return url ? el("a", { href: url, class: "download", download: "" }, text) : el("span", { class: "muted" }, "not stored");
}
