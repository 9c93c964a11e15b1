// Small helpers shared by the pages: DOM building (text always through textContent, so user
// strings are never parsed as HTML), number and time formatting, metric scalars, fetching.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
  return node;
}

// The number a metric stands for: a finite number, or a dict's finite "default"; else null.
export function scalar(value) {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (value && typeof value === "object" && typeof value.default === "number") {
    return Number.isFinite(value.default) ? value.default : null;
  }
  return null;
}

export function fmtNum(x, digits = 4) {
  if (x === null || x === undefined) return "—";
  if (typeof x !== "number") return String(x);
  if (!Number.isFinite(x)) return String(x);
  if (x !== 0 && (Math.abs(x) >= 1e6 || Math.abs(x) < 1e-3)) return x.toExponential(3);
  return String(Number(x.toFixed(digits)));
}

export function fmtMetric(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") {
    const rest = Object.entries(value).filter(([k]) => k !== "default");
    const head = fmtNum(scalar(value));
    return rest.length ? `${head} (${rest.map(([k, v]) => `${k}=${fmtNum(v)}`).join(", ")})` : head;
  }
  return fmtNum(value);
}

export function fmtTime(t) {
  if (!t) return "—";
  const d = new Date(t * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function duration(row, now) {
  if (!row.started) return null;
  return (row.ended || now) - row.started;
}

// A choice's value as text: a name, an index, or a list of them.
export function choiceText(value) {
  if (Array.isArray(value)) return value.map(choiceText).join("+") || "∅";
  if (value === null || value === undefined) return "—";
  return String(value);
}

export function archText(arch) {
  if (!arch || typeof arch !== "object") return "—";
  return Object.entries(arch).map(([k, v]) => `${k}=${choiceText(v)}`).join("  ");
}

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function getJSON(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
  } catch (err) {
    throw new HttpError(0, `cannot reach the nascli web UI server (${err.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    throw new HttpError(response.status, `the server sent no JSON (HTTP ${response.status})`);
  }
  if (!response.ok) throw new HttpError(response.status, body?.error || `HTTP ${response.status}`);
  return body;
}

// One poller per page: the next request starts only when the previous one has finished (no
// refreshes piling up), and after an error it retries less often.
export class Poller {
  constructor(step, interval) {
    this.step = step;
    this.interval = interval;
    this.timer = null;
    this.stopped = false;
    this.failures = 0;
  }
  start() {
    this.schedule(this.interval);
  }
  schedule(delay) {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.tick(), delay);
  }
  async tick() {
    if (this.stopped) return;
    let again = true;
    const began = performance.now();
    try {
      again = (await this.step()) !== false;
      this.took = performance.now() - began;
      this.failures = 0;
    } catch (err) {
      this.failures += 1;
      showBanner(err.message + " — retrying", "warn");
    }
    if (again) {
      const wait = typeof this.interval === "function" ? this.interval() : this.interval;
      // A slow server (a large experiment) is asked less often: at most ~1/5 of its time.
      const slow = 5 * (this.took || 0);
      this.schedule(Math.max(wait, slow) * Math.min(8, 2 ** this.failures));
    }
  }
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

export function showBanner(text, kind = "warn") {
  const banner = document.getElementById("banner");
  banner.className = `banner ${kind}`;
  banner.textContent = text;
  banner.hidden = false;
}

export function hideBanner() {
  document.getElementById("banner").hidden = true;
}

export function setLive(text) {
  document.getElementById("live").textContent = text;
}

export function statusBadge(status) {
  return el("span", { class: `badge s-${String(status).toLowerCase()}`, text: status });
}

// Quantiles of sorted numbers (linear interpolation).
export function quantile(sorted, q) {
  if (!sorted.length) return null;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

// Poll one API resource for a page: draw(body) after each read; it returns whether to go on.
// A 404 (the thing was deleted, or never was) ends the polling with a message.
export function watch(root, url, draw, interval = 2000) {
  const poller = new Poller(async () => {
    let body;
    try {
      body = await getJSON(url);
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) {
        showBanner(err.message, "error");
        root.dataset.gone = "1";
        return false;
      }
      throw err;
    }
    hideBanner();
    const again = draw(body);
    root.dataset.loaded = "1";
    setLive(`updated ${new Date().toLocaleTimeString()}`);
    return again;
  }, interval);
  poller.tick();
  return poller;
}
