"""The web UI at 50 and 10,000 trials: time to first full render and API latency, side by side.

Stores are built by ``tests/webui/synthetic.make_store`` (the store's own write path, as the
manager writes: ``add_trial`` / ``add_metric`` / ``update_trial``; 5 intermediate results per
trial, every 9th trial FAILED, 2 RUNNING). For each size and round a new server is started (its
cache empty) and a fresh headless Chromium page opens the experiment page:

- first full render: from navigation to every section drawn (summary, best architecture,
  curves, best-so-far charts, per-choice view, the first table page); then a reload with the
  server's cache warm (the second reload: closing the server's own first connection to a store
  nobody else has open checkpoints its WAL, which changes the files the cache is keyed on once).
- API latency over loopback HTTP: the first request after start (cold) and the median of the
  next ones (warm) for each route the page uses; the page's 2-second poll (``?after=`` new
  trials + ``?ids=`` running ones); and, as the baseline a script would otherwise use, the
  CLI printing the same JSON (``nascli status --json``, ``nascli trial ls --json``).

    nice -n 19 python benchmarks/webui_render.py [--rounds 3] [--sizes 50,10000]

Needs Chromium and Playwright's Python package (as the browser tests).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.webui.browser import open_browser  # noqa: E402
from tests.webui.synthetic import make_store  # noqa: E402


def get(url: str) -> float:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
    return time.perf_counter() - began


def cli(*args: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nascli.cli.main", *args], check=True,
                   stdout=subprocess.DEVNULL, env=env)  # fmt: skip
    return time.perf_counter() - began


def measure(size: int, rounds: int, work: Path) -> dict[str, list[float]]:
    from nascli.webui.server import make_server

    store = make_store(work / f"s{size}", size, running=2, failed_every=9, status="RUNNING")
    exp = store.id
    last, running = str(size + 1), f"{size},{size + 1}"
    routes = {
        "GET /api/experiments": "/api/experiments",
        "GET /api/experiments/{id}": f"/api/experiments/{exp}",
        "GET /api/experiments/{id}/trials": f"/api/experiments/{exp}/trials",
        "GET /api/experiments/{id}/trials/{trial}": f"/api/experiments/{exp}/trials/1",
        "poll: trials?after=LAST + ?ids=RUNNING": None,
    }
    out: dict[str, list[float]] = {}
    with open_browser(work / f"browser{size}") as context:
        for _ in range(rounds):
            server = make_server("127.0.0.1", 0)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            base = f"http://127.0.0.1:{server.server_address[1]}"
            try:
                page = context.new_page()
                began = time.perf_counter()
                page.goto(f"{base}/experiments/{exp}")
                page.wait_for_selector("main[data-loaded='1']", timeout=120_000)
                out.setdefault("first full render (cold server)", []).append(
                    time.perf_counter() - began
                )
                for _ in range(2):  # the first reload may re-read once (see the docstring)
                    began = time.perf_counter()
                    page.reload()
                    page.wait_for_selector("main[data-loaded='1']", timeout=120_000)
                out.setdefault("reload (warm server)", []).append(time.perf_counter() - began)
                page.close()
                server.api.cache.close()
                server.api.cache = type(server.api.cache)()  # cold again for the API figures
                poll = (f"{base}/api/experiments/{exp}/trials?after={last}",
                        f"{base}/api/experiments/{exp}/trials?ids={running}")  # fmt: skip
                for name, path in routes.items():
                    if path is None:
                        out.setdefault(f"{name} (warm)", []).append(
                            statistics.median(get(poll[0]) + get(poll[1]) for _ in range(5))
                        )
                        continue
                    out.setdefault(f"{name} (cold)", []).append(get(base + path))
                    out.setdefault(f"{name} (warm)", []).append(
                        statistics.median(get(base + path) for _ in range(5))
                    )
            finally:
                server.shutdown()
                server.server_close()
        for _ in range(rounds):
            status = cli("status", exp, "--json")
            out.setdefault("baseline: nascli status --json", []).append(status)
            out.setdefault("baseline: nascli trial ls --json", []).append(
                cli("trial", "ls", exp, "--json")
            )
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="50,10000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="nascli-webui-bench-") as tmp:
        os.environ["NASCLI_HOME"] = str(Path(tmp) / "home")
        results = {size: measure(size, args.rounds, Path(tmp)) for size in sizes}
    names = list(results[sizes[0]])
    width = max(map(len, names)) + 2
    head = "".join(f"{f'{s:,} trials':>16}" for s in sizes)
    ratio = f"{'ratio':>10}" if len(sizes) == 2 else ""
    print(f"median of {args.rounds} rounds, seconds (2 trials RUNNING in each experiment)")
    print(f"{'':<{width}}{head}{ratio}")
    for name in names:
        cells = [statistics.median(results[s][name]) for s in sizes]
        line = "".join(f"{c * 1000:>13.1f} ms" for c in cells)
        if len(sizes) == 2:
            line += f"{cells[1] / cells[0]:>9.1f}x"
        print(f"{name:<{width}}{line}")


if __name__ == "__main__":
    main()
