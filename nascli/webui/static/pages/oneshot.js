// One one-shot run (NNI's NAS UI): metrics per epoch, for each choice its architecture weights
// (or sampling probabilities) per candidate over epochs, and the current export.

import { el, clear, choiceText, fmtNum, fmtTime, statusBadge, watch } from "../util.js";
import { LineChart, PALETTE } from "../charts.js";

export function oneshotPage(root, runId) {
  const url = `/api/oneshot/${encodeURIComponent(runId)}`;
  const head = el("section", { class: "card", id: "run-head" }, el("p", { class: "muted", text: "Loading…" }));
  const exportBox = el("section", { class: "card", id: "run-export" });
  const metricsBox = el("div", { class: "chart", id: "run-metrics" });
  const weightsBox = el("div", { class: "choices", id: "run-weights" });
  clear(root, el("div", { class: "cols" }, head, exportBox),
    el("section", { class: "card" }, el("h2", { text: "Metrics per epoch" }), metricsBox),
    el("section", { class: "card" }, el("h2", { text: "Weights per choice over epochs" }),
      el("p", { class: "muted", text: "Architecture weights (DARTS, ProxylessNAS) or sampling " +
        "probabilities (ENAS, random) of each candidate, as the trainer logged them each epoch." }),
      weightsBox));
  const metrics = new LineChart(metricsBox, { xInteger: true, xLabel: "epoch", yLabel: "value", empty: "No epoch logged yet." });
  const charts = new Map(); // key → {box, chart, bars}

  function draw(run) {
    clear(head,
      el("div", { class: "card-head" }, el("h1", { text: run.trainer || "one-shot run" }),
        statusBadge(run.ended ? "ENDED" : "RUNNING")),
      el("table", { class: "kv" }, el("tbody", {},
        [["log directory", run.path], ["epochs", `${run.epochs.length}${run.num_epochs ? " of " + run.num_epochs : ""}`],
          ["started", fmtTime(run.started)], ["updated", fmtTime(run.updated)],
          ["choices", Object.keys(run.choices).length]]
          .map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: v }))))),
      run.bad_lines ? el("p", { class: "warn", text: `${run.bad_lines} line(s) of the log could not be read and were skipped.` }) : null);
    clear(exportBox, el("h2", { text: run.ended ? "Final architecture" : "Current architecture" }),
      run.export ? el("table", { class: "kv", id: "export" }, el("tbody", {},
        Object.entries(run.export).map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: choiceText(v) })))))
        : el("p", { class: "empty", text: "No export logged yet." }));
    const xs = run.epochs.map((e, i) => (Number.isInteger(e.epoch) ? e.epoch : i));
    const names = [...new Set(run.epochs.flatMap((e) => Object.keys(e.metrics)))];
    metrics.set(names.map((n, i) => ({ label: n, color: PALETTE[i % PALETTE.length], width: 2, points: xs.length <= 50 })),
      [xs, ...names.map((n) => run.epochs.map((e) => e.metrics[n] ?? null))]);
    const keys = Object.keys(run.choices);
    if (!keys.length) {
      clear(weightsBox, el("p", { class: "empty", text: "No choice logged yet." }));
      charts.clear();
      return;
    }
    if (!charts.size) clear(weightsBox);
    for (const key of keys) {
      const spec = run.choices[key];
      let entry = charts.get(key);
      if (!entry) {
        const box = el("div", { class: "chart small" });
        const bars = el("div", { class: "bars" });
        weightsBox.append(el("div", { class: "choice", "data-key": key },
          el("h3", {}, key, el("span", { class: "muted", text: ` ${spec.type ? spec.type.replace("_", " ") : ""}${spec.n_chosen ? `, ${spec.n_chosen} chosen` : ""}` })),
          box, bars));
        entry = { box, bars, chart: new LineChart(box, { xInteger: true, xLabel: "epoch", yLabel: "weight", height: 180, empty: "No weights yet." }) };
        charts.set(key, entry);
      }
      const names = spec.candidates.length ? spec.candidates
        : (run.epochs.at(-1)?.weights[key] || []).map((_, i) => String(i));
      entry.chart.set(names.map((n, i) => ({ label: n, color: PALETTE[i % PALETTE.length], width: 2 })),
        [xs, ...names.map((_, i) => run.epochs.map((e) => e.weights[key]?.[i] ?? null))]);
      const latest = run.epochs.at(-1)?.weights[key] || [];
      // Probabilities (all in [0, 1]) are drawn to scale; other weights relative to the largest.
      const numbers = latest.filter((w) => typeof w === "number");
      const top = numbers.every((w) => w >= 0 && w <= 1) ? 1 : Math.max(0, ...numbers.map(Math.abs)) || 1;
      clear(entry.bars, names.map((n, i) => {
        const w = latest[i];
        const fill = el("span", { class: "fill" });
        fill.style.width = `${typeof w === "number" ? (100 * Math.abs(w)) / top : 0}%`;
        fill.style.background = PALETTE[i % PALETTE.length];
        return el("div", { class: "barrow", "data-candidate": n }, el("span", { class: "name", text: n }),
          el("span", { class: "bar" }, fill), el("span", { class: "num", text: fmtNum(w ?? null) }));
      }));
    }
  }

  const poller = watch(root, url, (run) => {
    draw(run);
    return !run.ended;
  });
  return { stop: () => { poller.stop(); metrics.destroy(); for (const c of charts.values()) c.chart.destroy(); } };
}
