// One experiment: status and budget, best architecture, intermediate-result curves (running
// trials update live), best so far over trials and over time, the per-choice view, the trials.
//
// Data: status (/api/experiments/ID, as `status --json`), the search space, and every trial once
// (/trials, as `trial ls --json`); then each poll asks only for trials launched after the last
// one held (?after=) and for those it holds that had not ended (?ids=), one poll in flight.

import { el, clear, fmtDuration, fmtMetric, fmtNum, getJSON, hideBanner, HttpError,
  Poller, quantile, scalar, setLive, showBanner, statusBadge, choiceText } from "../util.js";
import { LineChart, PALETTE, choiceBoxPlot } from "../charts.js";
import { TrialTable } from "./trialtable.js";

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "USER_CANCELED", "EARLY_STOPPED"]);
const ENDED_EXPERIMENT = new Set(["DONE", "STOPPED", "ERROR"]);

export function experimentPage(root, expId) {
  const api = `/api/experiments/${encodeURIComponent(expId)}`;
  const state = { summary: null, space: {}, rows: [], byId: new Map(), topK: 10, picked: null };

  const summaryBox = el("section", { class: "card", id: "summary" }, el("p", { class: "muted", text: "Loading…" }));
  const bestBox = el("section", { class: "card", id: "best" });
  const topSelect = el("select", { id: "curve-top", "aria-label": "curves shown",
    onchange: () => { state.topK = Number(topSelect.value); drawCurves(); } },
    [[10, "best 10 + running"], [20, "best 20 + running"], [50, "best 50 + running"],
      [200, "best 200 + running"]].map(([v, t]) => el("option", { value: v, text: t })));
  const curvesBox = el("div", { class: "chart", id: "curves" });
  const byTrialBox = el("div", { class: "chart", id: "best-trials" });
  const byTimeBox = el("div", { class: "chart", id: "best-time" });
  const choicesBox = el("div", { id: "choices", class: "choices" });
  const tableBox = el("section", { class: "card", id: "trial-table" });
  clear(root,
    el("div", { class: "cols" }, summaryBox, bestBox),
    el("section", { class: "card" }, el("div", { class: "card-head" },
      el("h2", { text: "Intermediate results" }), topSelect), curvesBox),
    el("div", { class: "cols" },
      el("section", { class: "card" }, el("h2", { text: "Best so far, by trial" }), byTrialBox),
      el("section", { class: "card" }, el("h2", { text: "Best so far, over time" }), byTimeBox)),
    el("section", { class: "card" }, el("h2", { text: "Per choice: final metric by candidate" }),
      el("p", { class: "muted", text: "Each row: the finished trials that chose the candidate — " +
        "whiskers min–max, box quartiles, line median, dot best. Click a candidate to filter the trials." }),
      choicesBox),
    tableBox);

  const curves = new LineChart(curvesBox, { xInteger: true, xLabel: "intermediate result #", yLabel: "metric",
    empty: "No intermediate results yet." });
  const byTrial = new LineChart(byTrialBox, { xInteger: true, xLabel: "trial (launch order)", yLabel: "metric",
    empty: "No finished trial with a metric yet." });
  const byTime = new LineChart(byTimeBox, { xTime: true, xLabel: "time", yLabel: "metric",
    empty: "No finished trial with a metric yet." });
  const table = new TrialTable(tableBox, expId, { onChange: () => { state.picked = null; drawChoices(); } });

  const sign = () => (state.summary?.optimize_mode === "minimize" ? -1 : 1);
  const active = () => state.rows.filter((r) => !TERMINAL.has(r.status));

  function merge(rows) {
    for (const row of rows) {
      const known = state.byId.get(row.id);
      if (known) {
        row._seq = known._seq;
        state.rows[known._seq] = row;
      } else {
        row._seq = state.rows.length;
        state.rows.push(row);
      }
      state.byId.set(row.id, row);
    }
  }

  function drawSummary() {
    const s = state.summary;
    const counts = s.trials || {};
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const ended = [...TERMINAL].reduce((n, status) => n + (counts[status] || 0), 0);
    const pct = s.max_trial_num ? Math.min(100, (100 * ended) / s.max_trial_num) : 0;
    const unusable = state.rows.filter((r) => r.status === "SUCCEEDED" && scalar(r.final) === null).length;
    const timePct = s.max_exec_duration ? Math.min(100, (100 * s.exec_seconds) / s.max_exec_duration) : 0;
    clear(summaryBox,
      el("div", { class: "card-head" }, el("h1", { text: s.name || s.id }), statusBadge(s.status)),
      el("p", { class: "muted" }, `${s.id} · tuner ${s.tuner} (${s.optimize_mode}) · ` +
        `${s.trial_concurrency} at a time · manager ${s.manager?.alive ? "running (pid " + s.manager.pid + ")" : "not running"}`),
      s.warning ? el("p", { class: "warn", id: "warning", text: s.warning }) : null,
      s.reason ? el("p", { class: "muted", text: `reason: ${s.reason}` }) : null,
      s.waiting_for ? el("p", { class: "muted", text: `waiting for: ${s.waiting_for}` }) : null,
      el("div", { class: "budget" },
        el("span", { text: "trials " }),
        el("strong", { id: "trial-count", text: total }),
        el("span", { text: ` launched, ${ended} ended of ${s.max_trial_num} (budget)` }),
        el("div", { class: "bar" }, el("div", { class: "fill", "data-pct": pct.toFixed(1) }))),
      el("div", { class: "budget" },
        el("span", { text: `time ${fmtDuration(s.exec_seconds)} of ${fmtDuration(s.max_exec_duration)}` }),
        el("div", { class: "bar" }, el("div", { class: "fill", "data-pct": timePct.toFixed(1) }))),
      el("p", { class: "counts" }, Object.entries(counts).map(([k, v]) =>
        el("span", { class: "count" }, statusBadge(k), ` ${v}`))),
      unusable ? el("p", { class: "warn", id: "unusable", text: `${unusable} succeeded trial(s) ` +
        "have no usable final metric (missing, NaN or infinite): shown as — and left out of the charts." }) : null,
      el("p", { class: "links" },
        el("a", { href: `${api}/export?type=csv`, download: `${s.id}.csv`, text: "export CSV" }), " · ",
        el("a", { href: `${api}/export?type=json`, download: `${s.id}.json`, text: "export JSON" }), " · ",
        el("a", { href: api, target: "_blank", text: "status JSON" })));
    // Widths through CSSOM (the CSP forbids inline style attributes).
    for (const fill of summaryBox.querySelectorAll(".fill")) fill.style.width = `${fill.dataset.pct}%`;
  }

  function drawBest() {
    const best = state.summary.best;
    if (!best) {
      clear(bestBox, el("h2", { text: "Best architecture" }),
        el("p", { class: "empty", id: "best-arch", text: "No succeeded trial with a metric yet." }));
      return;
    }
    const href = `/experiments/${encodeURIComponent(expId)}/trials/${encodeURIComponent(best.id)}`;
    clear(bestBox, el("h2", { text: "Best architecture" }),
      el("p", {}, "trial ", el("a", { href, id: "best-trial", text: best.id }), " · metric ",
        el("strong", { id: "best-metric", text: fmtMetric(best.metric) })),
      el("table", { class: "kv", id: "best-arch" }, el("tbody", {},
        Object.entries(best.architecture || {}).map(([k, v]) =>
          el("tr", {}, el("th", { text: k }), el("td", { text: choiceText(v) }))))));
  }

  function drawCurves() {
    const withCurve = state.rows.filter((r) => r.intermediate.length);
    const running = withCurve.filter((r) => !TERMINAL.has(r.status));
    const s = sign();
    const done = withCurve.filter((r) => TERMINAL.has(r.status) && scalar(r.final) !== null)
      .sort((a, b) => s * scalar(b.final) - s * scalar(a.final)).slice(0, state.topK);
    let chosen = [...done, ...running];
    if (!chosen.length) chosen = withCurve.slice(-state.topK); // e.g. only failed trials
    chosen.sort((a, b) => a._seq - b._seq);
    const len = Math.max(0, ...chosen.map((r) => r.intermediate.length));
    const xs = Array.from({ length: len }, (_, i) => i + 1);
    const series = chosen.map((r, i) => ({
      label: `trial ${r.id}${TERMINAL.has(r.status) ? "" : " (running)"}`,
      color: PALETTE[i % PALETTE.length], width: TERMINAL.has(r.status) ? 1.5 : 3,
      points: len <= 30,
    }));
    const data = [xs, ...chosen.map((r) => xs.map((_, i) => (i < r.intermediate.length ? scalar(r.intermediate[i]) : null)))];
    curves.set(series, data);
    curvesBox.dataset.running = String(running.length);
  }

  function drawBestSoFar() {
    const s = sign();
    const xs = [], finals = [], bests = [];
    let best = null;
    for (const r of state.rows) {
      const v = r.status === "SUCCEEDED" ? scalar(r.final) : null;
      if (v !== null && (best === null || s * v > s * best)) best = v;
      xs.push(r._seq + 1);
      finals.push(v);
      bests.push(best);
    }
    byTrial.set([{ label: "best so far", color: "#d62728", width: 2 },
      { label: "trial's final", color: "#7b8798", line: false, points: true }], [xs, bests, finals]);
    const ended = state.rows.filter((r) => r.status === "SUCCEEDED" && r.ended && scalar(r.final) !== null)
      .sort((a, b) => a.ended - b.ended);
    const ts = [], tf = [], tb = [];
    best = null;
    for (const r of ended) {
      const v = scalar(r.final);
      if (best === null || s * v > s * best) best = v;
      ts.push(r.ended);
      tf.push(v);
      tb.push(best);
    }
    byTime.set([{ label: "best so far", color: "#d62728", width: 2 },
      { label: "trial's final", color: "#7b8798", line: false, points: true }], [ts, tb, tf]);
  }

  function drawChoices() {
    const keys = Object.keys(state.space);
    if (!keys.length) {
      clear(choicesBox, el("p", { class: "empty", text: "The search space has no choices." }));
      return;
    }
    const s = sign();
    const finished = state.rows.filter((r) => r.status === "SUCCEEDED" && scalar(r.final) !== null);
    let lo = Infinity, hi = -Infinity;
    for (const r of finished) { const v = scalar(r.final); lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!finished.length) { lo = 0; hi = 1; }
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    const blocks = keys.map((key) => {
      const spec = state.space[key];
      const values = spec.candidates.map(() => []);
      for (const r of finished) {
        const idx = r.parameters?.[key]?._idx;
        const v = scalar(r.final);
        for (const i of Array.isArray(idx) ? idx : [idx]) {
          if (Number.isInteger(i) && i >= 0 && i < values.length) values[i].push(v);
        }
      }
      const stats = spec.candidates.map((name, i) => {
        const vs = values[i].sort((a, b) => a - b);
        return { name, values: vs, best: vs.length ? (s > 0 ? vs.at(-1) : vs[0]) : null };
      });
      const picked = state.picked && state.picked.key === key ? state.picked.name : null;
      const plot = choiceBoxPlot(stats, [lo, hi], { picked, onPick: (name) => {
        state.picked = { key, index: spec.candidates.indexOf(name), name };
        table.setChoice(state.picked);
        drawChoices();
        tableBox.scrollIntoView({ behavior: "smooth", block: "start" });
      } });
      const medians = stats.filter((x) => x.values.length).map((x) => [x.name, quantile(x.values, 0.5)]);
      const lead = medians.sort((a, b) => s * b[1] - s * a[1])[0];
      return el("div", { class: "choice", "data-key": key },
        el("h3", {}, key, el("span", { class: "muted", text:
          ` ${spec.type === "input_choice" ? `input choice, ${spec.n_chosen ?? "any number"} of ${spec.candidates.length}` : `layer choice, ${spec.candidates.length} candidates`}` +
          (lead ? ` · best median: ${lead[0]} (${fmtNum(lead[1])})` : "") })),
        plot);
    });
    clear(choicesBox, blocks);
  }

  function drawAll() {
    const began = performance.now();
    const timed = (name, draw) => { const t = performance.now(); draw(); spent[name] = Math.round(performance.now() - t); };
    const spent = {};
    timed("summary", drawSummary);
    timed("best", drawBest);
    timed("curves", drawCurves);
    timed("bestSoFar", drawBestSoFar);
    timed("choices", drawChoices);
    timed("table", () => table.setRows(state.rows, sign()));
    root.dataset.renderMs = String(Math.round(performance.now() - began));
    root.dataset.renderParts = JSON.stringify(spent);
    root.dataset.loaded = "1";
    root.dataset.trials = String(state.rows.length);
  }

  async function load() {
    const [summary, space, rows] = await Promise.all([getJSON(api), getJSON(`${api}/space`), getJSON(`${api}/trials`)]);
    state.summary = summary;
    state.space = space;
    merge(rows);
    drawAll();
    setLive(`updated ${new Date().toLocaleTimeString()}`);
  }

  async function poll() {
    const last = state.rows.at(-1);
    const open = active().map((r) => r.id);
    const [summary, added, updated] = await Promise.all([
      getJSON(api),
      getJSON(last ? `${api}/trials?after=${encodeURIComponent(last.id)}` : `${api}/trials`),
      open.length ? getJSON(`${api}/trials?ids=${open.slice(0, 1000).map(encodeURIComponent).join(",")}`) : [],
    ]);
    hideBanner();
    const changed = added.length || updated.length || JSON.stringify(summary) !== JSON.stringify(state.summary);
    state.summary = summary;
    merge(updated);
    merge(added);
    if (changed) drawAll();
    setLive(`updated ${new Date().toLocaleTimeString()}`);
  }

  const interval = () => {
    const over = state.summary && ENDED_EXPERIMENT.has(state.summary.status) && !active().length;
    return over ? 10000 : state.rows.length > 2000 ? 4000 : 2000;
  };
  const gone = (err) => {
    if (err instanceof HttpError && err.status === 404) {
      showBanner(`Experiment ${expId} does not exist (any more): ${err.message}`, "error");
      root.dataset.gone = "1";
      return true;
    }
    return false;
  };
  const poller = new Poller(async () => {
    try {
      if (!state.summary) await load(); else await poll();
    } catch (err) {
      if (gone(err)) return false;
      throw err;
    }
    return true;
  }, interval);
  load().then(() => poller.start(), (err) => {
    if (gone(err)) {
      clear(summaryBox, el("p", { class: "error", text: err.message }));
      return;
    }
    showBanner(`${err.message} — retrying`, "warn");
    poller.start();
  });
  return { stop: () => { poller.stop(); curves.destroy(); byTrial.destroy(); byTime.destroy(); } };
}

