// Charts: line charts through the vendored uPlot (window.uPlot, static/vendor/), and the
// per-choice box plots as plain SVG. Each chart's container records what it shows in
// data-series / data-points, so a person (and the browser tests) can tell a drawn chart from an
// empty one.

import { el, clear, fmtNum, quantile } from "./util.js";

export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

const INTEGER_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000];
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// Tick labels with as many decimals as the tick spacing needs (near-uniform architecture
// weights differ in the fourth decimal; uPlot's default would print 0.5 0.5 0.501).
function tickLabels(u, splits) {
  const step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : 1;
  let digits = 0;
  while (digits < 8 && Math.abs(Math.round(step * 10 ** digits) - step * 10 ** digits) > 1e-6) digits++;
  return splits.map((v) => (v === null || v === undefined ? "" : v.toFixed(digits)));
}

// A uPlot line chart that keeps itself across updates: same series → setData, else rebuilt.
export class LineChart {
  constructor(target, { xTime = false, xInteger = false, xLabel = "", yLabel = "", height = 260,
    empty = "no data yet" } = {}) {
    this.target = target;
    this.xInteger = xInteger;
    this.xTime = xTime;
    this.xLabel = xLabel;
    this.yLabel = yLabel;
    this.height = height;
    this.emptyText = empty;
    this.plot = null;
    this.signature = null;
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(target);
  }

  width() {
    return Math.max(240, this.target.clientWidth || 480);
  }

  resize() {
    if (this.plot && Math.abs(this.plot.width - this.width()) > 4) {
      this.plot.setSize({ width: this.width(), height: this.height });
    }
  }

  // series: [{label, color, width?, points?: bool, line?: bool}], data: [xs, ys1, ys2, ...]
  set(series, data, emptyText) {
    const points = data.slice(1).reduce(
      (n, ys) => n + ys.reduce((m, y) => m + (y === null || y === undefined ? 0 : 1), 0), 0);
    this.target.dataset.series = String(series.length);
    this.target.dataset.points = String(points);
    if (!series.length || !points) {
      this.destroy();
      clear(this.target, el("p", { class: "empty", text: emptyText || this.emptyText }));
      return;
    }
    const signature = JSON.stringify(series);
    if (this.plot && signature === this.signature) {
      this.plot.setData(data);
      return;
    }
    this.destroy();
    clear(this.target);
    this.signature = signature;
    const opts = {
      width: this.width(),
      height: this.height,
      legend: { show: series.length <= 12 },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: this.xTime, ...(this.xInteger ? { range: (u, lo, hi) => [lo, Math.max(hi, lo + 1)] } : {}) } },
      axes: [
        { label: this.xLabel, stroke: "#555", grid: { stroke: "#eee" },
          ...(this.xInteger ? { incrs: INTEGER_STEPS } : {}) },
        { label: this.yLabel, stroke: "#555", grid: { stroke: "#eee" }, size: 60, values: tickLabels },
      ],
      series: [
        { label: this.xLabel || "x" },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width ?? 1.5,
          spanGaps: s.line !== false,
          paths: s.line === false ? () => null : undefined,
          points: { show: s.points ?? false, size: s.line === false ? 4 : 5, fill: s.color },
          value: (u, v) => fmtNum(v),
        })),
      ],
    };
    this.plot = new window.uPlot(opts, data, this.target);
  }

  destroy() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.signature = null;
  }
}

// Per-choice view: for one key, one row per candidate with the distribution of the metric of
// the trials that chose it: whiskers min–max, box q1–q3, median line, best as a dot.
// stats: [{name, values (sorted), best}], domain: [lo, hi] shared by every key.
export function choiceBoxPlot(stats, domain, { onPick, picked } = {}) {
  const rowH = 22, labelW = 120, countW = 46, plotW = 360, pad = 8;
  const width = labelW + plotW + countW + 2 * pad;
  const height = stats.length * rowH + 24;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "boxplot",
    role: "img" });
  const [lo, hi] = domain;
  const span = hi - lo || 1;
  const x = (v) => labelW + pad + ((v - lo) / span) * plotW;
  // axis
  const axisY = stats.length * rowH + 4;
  root.append(svg("line", { x1: x(lo), x2: x(hi), y1: axisY, y2: axisY, class: "axis" }));
  for (const t of [lo, lo + span / 2, hi]) {
    root.append(svg("text", { x: x(t), y: axisY + 14, class: "tick", "text-anchor": "middle" },
      fmtNum(t, 3)));
  }
  stats.forEach((s, i) => {
    const y = i * rowH + rowH / 2;
    const g = svg("g", { class: "cand" + (picked === s.name ? " picked" : ""),
      "data-candidate": s.name, "data-count": s.values.length, tabindex: 0 });
    const label = svg("text", { x: labelW - 4, y: y + 4, "text-anchor": "end", class: "label" },
      s.name);
    g.append(svg("title", {}, s.values.length
      ? `${s.name}: n=${s.values.length}, median ${fmtNum(quantile(s.values, 0.5))}, ` +
        `best ${fmtNum(s.best)}, min ${fmtNum(s.values[0])}, max ${fmtNum(s.values.at(-1))}`
      : `${s.name}: no finished trial chose it`));
    g.append(svg("rect", { x: 0, y: i * rowH, width, height: rowH, class: "hit" }), label);
    if (s.values.length) {
      const v = s.values;
      const q1 = quantile(v, 0.25), q2 = quantile(v, 0.5), q3 = quantile(v, 0.75);
      g.append(
        svg("line", { x1: x(v[0]), x2: x(v.at(-1)), y1: y, y2: y, class: "whisker" }),
        svg("rect", { x: x(q1), y: y - 6, width: Math.max(1, x(q3) - x(q1)), height: 12,
          class: "box" }),
        svg("line", { x1: x(q2), x2: x(q2), y1: y - 7, y2: y + 7, class: "median" }),
        svg("circle", { cx: x(s.best), cy: y, r: 3.5, class: "best" }),
      );
    } else {
      g.append(svg("text", { x: x(lo) + 4, y: y + 4, class: "none" }, "no finished trial"));
    }
    g.append(svg("text", { x: labelW + plotW + 2 * pad, y: y + 4, class: "count" },
      `n=${s.values.length}`));
    if (onPick) {
      g.addEventListener("click", () => onPick(s.name));
      g.addEventListener("keydown", (e) => { if (e.key === "Enter") onPick(s.name); });
    }
    root.append(g);
  });
  return root;
}
