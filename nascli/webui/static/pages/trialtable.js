// The trial table: sort by any column, filter by status, by a choice (set from the per-choice
// view) and by text, page through. Rows are the API's `trial ls --json` rows held by the page;
// only the shown page is built as DOM, so 10,000 trials cost one sort per change.

import { el, clear, archText, duration, fmtDuration, fmtMetric, fmtNum, fmtTime, scalar,
  statusBadge } from "../util.js";

const STATUSES = ["WAITING", "RUNNING", "SUCCEEDED", "FAILED", "USER_CANCELED", "EARLY_STOPPED"];
const COLUMNS = [
  ["seq", "Trial"], ["status", "Status"], ["final", "Final"], ["arch", "Architecture"],
  ["inter", "Intermediate"], ["duration", "Duration"], ["started", "Started"], ["reason", "Reason"],
];

export class TrialTable {
  constructor(root, expId, { onChange } = {}) {
    this.root = root;
    this.expId = expId;
    this.onChange = onChange;
    this.rows = [];
    this.sign = 1;
    this.status = "";
    this.choice = null; // {key, index, name}
    this.text = "";
    this.sort = { col: "seq", desc: true };
    this.page = 0;
    this.pageSize = 50;
    this.build();
  }

  build() {
    this.statusSelect = el("select", { id: "status-filter", "aria-label": "filter by status",
      onchange: () => { this.status = this.statusSelect.value; this.page = 0; this.render(); } });
    this.search = el("input", { id: "text-filter", type: "search", placeholder: "filter: id, choice, reason",
      "aria-label": "filter by text", oninput: () => {
        clearTimeout(this.searchTimer);
        this.searchTimer = setTimeout(() => {
          this.text = this.search.value.trim().toLowerCase(); this.page = 0; this.render();
        }, 150);
      } });
    this.sizeSelect = el("select", { id: "page-size", "aria-label": "rows per page",
      onchange: () => { this.pageSize = Number(this.sizeSelect.value); this.page = 0; this.render(); } },
      [25, 50, 100, 200].map((n) => el("option", { value: n, selected: n === this.pageSize, text: `${n} / page` })));
    this.chip = el("span", { class: "chips", id: "choice-filter" });
    this.head = el("tr", {});
    this.body = el("tbody", {});
    this.info = el("span", { id: "table-info", class: "muted" });
    this.pager = el("span", { class: "pager" });
    clear(this.root,
      el("div", { class: "toolbar" }, this.statusSelect, this.search, this.chip, this.sizeSelect),
      el("div", { class: "scroll" }, el("table", { class: "grid", id: "trials" },
        el("thead", {}, this.head), this.body)),
      el("div", { class: "toolbar" }, this.info, this.pager));
  }

  setRows(rows, sign) {
    this.rows = rows;
    this.sign = sign;
    this.render();
  }

  setChoice(choice) {
    this.choice = choice;
    this.page = 0;
    this.render();
  }

  filtered() {
    const now = Date.now() / 1000;
    let rows = this.rows;
    if (this.status) rows = rows.filter((r) => r.status === this.status);
    if (this.choice) {
      const { key, index } = this.choice;
      rows = rows.filter((r) => {
        const idx = r.parameters?.[key]?._idx;
        return Array.isArray(idx) ? idx.includes(index) : idx === index;
      });
    }
    if (this.text) {
      rows = rows.filter((r) => `${r.id} ${archText(r.architecture)} ${r.reason ?? ""}`
        .toLowerCase().includes(this.text));
    }
    const { col, desc } = this.sort;
    const key = {
      seq: (r) => r._seq,
      status: (r) => r.status,
      final: (r) => { const v = scalar(r.final); return v === null ? null : this.sign * v; },
      arch: (r) => archText(r.architecture),
      inter: (r) => r.intermediate.length,
      duration: (r) => duration(r, now),
      started: (r) => r.started,
      reason: (r) => r.reason ?? "",
    }[col];
    const decorated = rows.map((r) => [key(r), r]);
    decorated.sort((a, b) => {
      // Missing values (no final, not started) go last whichever the direction.
      if (a[0] === null || a[0] === undefined) return (b[0] === null || b[0] === undefined) ? a[1]._seq - b[1]._seq : 1;
      if (b[0] === null || b[0] === undefined) return -1;
      const c = a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1]._seq - b[1]._seq;
      return desc ? -c : c;
    });
    return decorated.map((d) => d[1]);
  }

  render() {
    const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    for (const r of this.rows) counts[r.status] = (counts[r.status] ?? 0) + 1;
    clear(this.statusSelect,
      el("option", { value: "", text: `all statuses (${this.rows.length})` }),
      STATUSES.map((s) => el("option", { value: s, selected: s === this.status,
        text: `${s} (${counts[s] ?? 0})` })));
    clear(this.chip, this.choice ? el("button", { class: "chip", title: "clear this filter",
      onclick: () => { this.setChoice(null); this.onChange?.(); },
      text: `${this.choice.key} = ${this.choice.name} ✕` }) : null);
    clear(this.head, COLUMNS.map(([col, label]) => el("th", {
      class: "sortable" + (this.sort.col === col ? (this.sort.desc ? " desc" : " asc") : ""),
      "data-col": col, tabindex: 0, title: "sort",
      onclick: () => this.sortBy(col),
      onkeydown: (e) => { if (e.key === "Enter") this.sortBy(col); },
    }, label)));
    const rows = this.filtered();
    const pages = Math.max(1, Math.ceil(rows.length / this.pageSize));
    this.page = Math.min(this.page, pages - 1);
    const start = this.page * this.pageSize;
    const shown = rows.slice(start, start + this.pageSize);
    const now = Date.now() / 1000;
    clear(this.body, shown.length ? shown.map((r) => this.row(r, now)) :
      el("tr", {}, el("td", { colspan: COLUMNS.length, class: "empty",
        text: this.rows.length ? "No trial matches these filters." : "No trials yet." })));
    this.info.textContent = rows.length
      ? `${start + 1}–${start + shown.length} of ${rows.length.toLocaleString("en")} trials` +
        (rows.length !== this.rows.length ? ` (filtered from ${this.rows.length.toLocaleString("en")})` : "")
      : "0 trials";
    this.info.dataset.matching = String(rows.length);
    const go = (p) => () => { this.page = p; this.render(); };
    clear(this.pager,
      el("button", { onclick: go(0), disabled: this.page === 0, title: "first page", text: "«" }),
      el("button", { onclick: go(this.page - 1), disabled: this.page === 0, id: "prev-page", text: "‹ prev" }),
      el("span", { id: "page-info", text: `page ${this.page + 1} of ${pages}` }),
      el("button", { onclick: go(this.page + 1), disabled: this.page >= pages - 1, id: "next-page", text: "next ›" }),
      el("button", { onclick: go(pages - 1), disabled: this.page >= pages - 1, title: "last page", text: "»" }));
  }

  sortBy(col) {
    if (this.sort.col === col) this.sort.desc = !this.sort.desc;
    else this.sort = { col, desc: col === "final" || col === "seq" || col === "duration" };
    this.page = 0;
    this.render();
  }

  row(r, now) {
    const inter = r.intermediate;
    const last = inter.length ? scalar(inter[inter.length - 1]) : null;
    const href = `/experiments/${encodeURIComponent(this.expId)}/trials/${encodeURIComponent(r.id)}`;
    return el("tr", { "data-trial": r.id, "data-status": r.status },
      el("td", {}, el("a", { href, text: r.id })),
      el("td", {}, statusBadge(r.status)),
      el("td", { class: "num", text: r.final === null ? "—" : fmtMetric(r.final) }),
      el("td", { class: "arch", text: archText(r.architecture) }),
      el("td", { class: "num", text: inter.length ? `${inter.length} (last ${fmtNum(last)})` : "—" }),
      el("td", { class: "num", text: fmtDuration(duration(r, now)) }),
      el("td", { text: fmtTime(r.started) }),
      el("td", { class: "reason", text: r.reason ?? "" }));
  }
}
