// The experiment list (as `nascli experiment list --all`) and the one-shot runs.

import { el, clear, fmtTime, getJSON, hideBanner, Poller, setLive, statusBadge } from "../util.js";

export function experimentList(root) {
  const expBox = el("section", { class: "card" }, el("p", { class: "muted", text: "Loading…" }));
  const runBox = el("section", { class: "card", hidden: true });
  clear(root, el("h1", { text: "Experiments" }), expBox, runBox);

  async function step() {
    const [experiments, runs] = await Promise.all([getJSON("/api/experiments"),
      getJSON("/api/oneshot")]);
    hideBanner();
    renderExperiments(expBox, experiments);
    renderRuns(runBox, runs);
    setLive(`updated ${new Date().toLocaleTimeString()}`);
  }
  const poller = new Poller(step, 5000);
  step().catch((err) => clear(expBox, el("p", { class: "error", text: err.message })))
    .finally(() => poller.start());
  return { stop: () => poller.stop() };
}

function renderExperiments(box, rows) {
  if (!rows.length) {
    clear(box, el("p", { class: "empty", id: "no-experiments",
      text: "No experiments yet. Start one with `nascli create --config config_nas.yml`." }));
    return;
  }
  const head = ["Experiment", "Name", "Status", "Manager", "Trials", "Succeeded", "Failed",
    "Running", "Started", "Ended"];
  const body = [...rows].reverse().map((r) => {
    const total = Object.values(r.trials || {}).reduce((a, b) => a + b, 0);
    return el("tr", { "data-experiment": r.id },
      el("td", {}, el("a", { href: `/experiments/${encodeURIComponent(r.id)}`, text: r.id })),
      el("td", { text: r.name }),
      el("td", {}, statusBadge(r.status)),
      el("td", { text: r.manager_alive ? "running" : "—" }),
      el("td", { class: "num", text: total }),
      el("td", { class: "num", text: r.trials?.SUCCEEDED ?? 0 }),
      el("td", { class: "num", text: r.trials?.FAILED ?? 0 }),
      el("td", { class: "num", text: r.trials?.RUNNING ?? 0 }),
      el("td", { text: fmtTime(r.started) }),
      el("td", { text: fmtTime(r.ended) }));
  });
  clear(box, el("table", { class: "grid", id: "experiments" },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { text: h })))),
    el("tbody", {}, body)));
}

function renderRuns(box, runs) {
  box.hidden = !runs.length;
  if (!runs.length) return;
  const body = runs.map((r) => el("tr", { "data-run": r.id },
    el("td", {}, el("a", { href: `/oneshot/${encodeURIComponent(r.id)}`, text: r.path })),
    el("td", { text: r.trainer ?? "—" }),
    el("td", { class: "num", text: `${r.epochs_done}${r.num_epochs ? " / " + r.num_epochs : ""}` }),
    el("td", {}, statusBadge(r.ended ? "ENDED" : "RUNNING")),
    el("td", { text: fmtTime(r.updated) })));
  clear(box, el("h2", { text: "One-shot runs" }), el("table", { class: "grid", id: "runs" },
    el("thead", {}, el("tr", {}, ["Log directory", "Trainer", "Epochs", "State", "Updated"]
      .map((h) => el("th", { text: h })))),
    el("tbody", {}, body)));
}
