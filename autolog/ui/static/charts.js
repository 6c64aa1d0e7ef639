// Scalar series as line charts: one uPlot chart per title, one line per series. Series of one title
// may have different iterations: uPlot.join aligns them on the union of their x values (gaps spanned).
import { el } from "./dom.js";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d", "#4b5563", "#ca8a04"];
const HEIGHT = 260;

// series: [{title, series, x: [...], y: [...]}] from /api/tasks/{id}/scalars. Returns the container.
export function scalarCharts(series) {
  const byTitle = new Map();
  for (const s of series) {
    if (!byTitle.has(s.title)) byTitle.set(s.title, []);
    byTitle.get(s.title).push(s);
  }
  const container = el("div", { class: "charts" });
  const charts = [];
  for (const [title, lines] of byTitle) {
    const box = el("figure", { class: "chart", "data-title": title }, el("figcaption", {}, title));
    container.append(box);
    charts.push([box, title, lines]);
  }
  // uPlot needs the box in the document to know its width: draw once the container is attached.
  requestAnimationFrame(() => {
    for (const [box, title, lines] of charts) drawChart(box, title, lines);
  });
  return container;
}

function drawChart(box, title, lines) {
  if (typeof uPlot === "undefined") {
    box.append(el("p", { class: "error", role: "alert" }, "The chart library (uPlot) did not load."));
    return;
  }
  const data = uPlot.join(lines.map(sortedByX));
  const opts = {
    width: chartWidth(box),
    height: HEIGHT,
    scales: { x: { time: false } },
    axes: [{ label: "iteration" }, {}],
    series: [
      { label: "iteration" },
      ...lines.map((s, i) => ({
        label: s.series, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true,
        points: { show: s.x.length <= 60 },
      })),
    ],
    legend: { live: true },
  };
  const plot = new uPlot(opts, data, box);
  box.dataset.drawn = String(lines.length);
  new ResizeObserver(() => {
    const width = chartWidth(box);
    if (Math.abs(width - plot.width) > 2) plot.setSize({ width, height: HEIGHT });
  }).observe(box);
}

// uPlot.join needs each series' x ascending; reported iterations may come in any order.
function sortedByX(s) {
  const order = s.x.map((_, i) => i).sort((a, b) => s.x[a] - s.x[b]);
  return [order.map((i) => s.x[i]), order.map((i) => s.y[i])];
}

function chartWidth(box) {
  return Math.max(280, Math.floor(box.clientWidth - 8));
}
