// The page's router: the path picks the view; every view reads the JSON API (/api, documented
// in docs/webui.md) and polls it while there is something live to show.

import { el, clear, hideBanner, showBanner, HttpError } from "./util.js";
import { experimentList } from "./pages/list.js";
import { experimentPage } from "./pages/experiment.js";
import { trialPage } from "./pages/trial.js";
import { oneshotPage } from "./pages/oneshot.js";

const app = document.getElementById("app");
let current = null; // the view shown: {stop()}

function crumbs(parts) {
  const nav = document.getElementById("crumbs");
  clear(nav, parts.map(([label, href], i) => [
    i ? el("span", { class: "sep", text: "›" }) : null,
    href ? el("a", { href, text: label }) : el("span", { text: label }),
  ]));
}

function route() {
  if (current) current.stop();
  hideBanner();
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts.length === 0) {
      crumbs([["experiments"]]);
      current = experimentList(app);
    } else if (parts[0] === "experiments" && parts.length === 2) {
      crumbs([["experiments", "/"], [parts[1]]]);
      current = experimentPage(app, parts[1]);
    } else if (parts[0] === "experiments" && parts.length === 4 && parts[2] === "trials") {
      crumbs([["experiments", "/"], [parts[1], `/experiments/${encodeURIComponent(parts[1])}`],
        [`trial ${parts[3]}`]]);
      current = trialPage(app, parts[1], parts[3]);
    } else if (parts[0] === "oneshot" && parts.length === 2) {
      crumbs([["experiments", "/"], ["one-shot run " + parts[1]]]);
      current = oneshotPage(app, parts[1]);
    } else {
      crumbs([["experiments", "/"]]);
      clear(app, el("p", { class: "empty", text: `No page ${location.pathname}.` }));
      current = { stop() {} };
    }
  } catch (err) {
    showBanner(err instanceof HttpError ? err.message : String(err), "error");
    current = { stop() {} };
  }
}

// Links inside the app change the view without reloading the page.
document.addEventListener("click", (event) => {
  const a = event.target.closest("a");
  if (!a || a.target || a.hasAttribute("download") || event.ctrlKey || event.metaKey ||
      event.shiftKey || event.button !== 0) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api")) return;
  event.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) {
    history.pushState(null, "", url.pathname + url.search);
  }
  route();
});
window.addEventListener("popstate", route);
route();
