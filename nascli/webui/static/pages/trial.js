// One trial: status, metric, reason, architecture and parameters, its curve, stdout/stderr.

import { el, clear, choiceText, fmtDuration, fmtMetric, fmtTime, scalar, statusBadge,
  watch } from "../util.js";
import { LineChart } from "../charts.js";

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "USER_CANCELED", "EARLY_STOPPED"]);

export function trialPage(root, expId, trialId) {
  const url = `/api/experiments/${encodeURIComponent(expId)}/trials/${encodeURIComponent(trialId)}`;
  const head = el("section", { class: "card", id: "trial-head" }, el("p", { class: "muted", text: "Loading…" }));
  const archBox = el("section", { class: "card", id: "trial-arch" });
  const curveBox = el("div", { class: "chart", id: "trial-curve" });
  const stdout = el("pre", { class: "log", id: "stdout" });
  const stderr = el("pre", { class: "log", id: "stderr" });
  const stdoutNote = el("span", { class: "muted" });
  const stderrNote = el("span", { class: "muted" });
  clear(root, el("div", { class: "cols" }, head, archBox),
    el("section", { class: "card" }, el("h2", { text: "Intermediate results" }), curveBox),
    el("section", { class: "card" }, el("h2", {}, "stdout ", stdoutNote), stdout),
    el("section", { class: "card" }, el("h2", {}, "stderr ", stderrNote), stderr));
  const curve = new LineChart(curveBox, { xInteger: true, xLabel: "intermediate result #", yLabel: "metric",
    empty: "This trial reported no intermediate result." });

  function draw(t) {
    const took = t.started ? ((t.ended || Date.now() / 1000) - t.started) : null;
    clear(head,
      el("div", { class: "card-head" }, el("h1", { text: `Trial ${t.id}` }), statusBadge(t.status)),
      el("table", { class: "kv" }, el("tbody", {},
        [["final", fmtMetric(t.final)], ["reason", t.reason || "—"],
          ["exit code", t.exit_code ?? "—"], ["parameter id", t.parameter_id],
          ["attempt", t.attempt], ["GPUs", t.gpus ? t.gpus.join(",") : "—"],
          ["pid", t.pid ?? "—"], ["started", fmtTime(t.started)], ["ended", fmtTime(t.ended)],
          ["duration", fmtDuration(took)], ["directory", t.directory]]
          .map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { class: k === "reason" ? "reason" : null, text: v }))))));
    clear(archBox, el("h2", { text: "Architecture" }),
      el("table", { class: "kv", id: "arch" }, el("tbody", {},
        Object.entries(t.architecture || {}).map(([k, v]) =>
          el("tr", {}, el("th", { text: k }), el("td", { text: choiceText(v) }))))),
      el("details", {}, el("summary", { text: "parameters (as the tuner sent them)" }),
        el("pre", { class: "json", text: JSON.stringify(t.parameters, null, 2) })));
    const inter = t.metrics.filter((m) => m.type !== "FINAL");
    const xs = inter.map((_, i) => i + 1);
    curve.set([{ label: `trial ${t.id}`, color: "#1f77b4", width: 2, points: true }],
      [xs, inter.map((m) => scalar(m.value))]);
    for (const [pre, note, tail] of [[stdout, stdoutNote, t.stdout_tail], [stderr, stderrNote, t.stderr_tail]]) {
      pre.textContent = tail.text || "";
      note.textContent = tail.missing ? "(no file yet)" : tail.truncated
        ? `(last ${tail.text.length.toLocaleString("en")} characters of ${tail.size.toLocaleString("en")} bytes)`
        : tail.text ? "" : "(empty)";
    }
  }

  let ended = false;
  const poller = watch(root, url, (t) => {
    draw(t);
    if (TERMINAL.has(t.status)) {
      if (ended) return false; // one more read after the end, for the last log lines
      ended = true;
    }
    return true;
  });
  return { stop: () => { poller.stop(); curve.destroy(); } };
}
