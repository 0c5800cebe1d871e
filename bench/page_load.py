"""How long `/` and `/wall` take to become usable in headless Chromium with a million incidents.

Usable means, for `/`: the 99 communes drawn, the choropleth coloured and the first incident
clusters on the map; for `/wall`: the communes drawn and the KPI tiles filled. Each page is opened
`--rounds` times in a fresh browser context (empty cache); the median, the worst and the page
weight (bytes of every response the page received) are printed. The server is `iocgis serve` on
the given database, started here on a free port of 127.0.0.1.

    DATABASE_URL=postgresql://.../scratch .venv/bin/python bench/page_load.py [--load-scale 100]

`--load-scale N` first loads the demo province at scale N (100: a million incidents, ~35 s) when
the database holds fewer incidents than that. Use a scratch database: it replaces the demo rows.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg

from gis_core.db import database_url
from gis_core.demo import INCIDENTS_PER_SCALE
from gis_core.settings import Settings

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BUDGET_S = 2.0
USABLE = {
    "/": """() => window.iocgis && document.querySelectorAll('path.iocgis-layer-communes').length >= 99
                 && typeof iocgis.choroplethShown === 'string' && (iocgis.loaded.incidents || 0) > 0""",
    "/wall": """() => window.iocgisWall && document.querySelectorAll('#wall-map path').length >= 99
                 && document.querySelector('#kpi-open .kpi-value').textContent !== '—'""",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_loaded(url: str, scale: int) -> int:
    with psycopg.connect(url) as conn:
        (n,) = conn.execute("SELECT count(*) FROM incidents").fetchone()
    if scale and n < scale * INCIDENTS_PER_SCALE:
        print(f"loading the demo at scale {scale} ({n:,} incidents now)...", flush=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "gis_core.cli", "demo", "load", "--scale", str(scale), "--force"],
                       check=True, env={**os.environ, "DATABASE_URL": url})
        print(f"loaded in {time.monotonic() - started:.0f} s", flush=True)
        with psycopg.connect(url) as conn:
            (n,) = conn.execute("SELECT count(*) FROM incidents").fetchone()
    return n


def start_server(url: str, var_dir: str | None) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "IOCGIS_PORT": str(port)}
    if var_dir:
        env["IOCGIS_VAR_DIR"] = var_dir
    log_path = Path(tempfile.mkstemp(prefix="iocgis-bench-", suffix=".log")[1])
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "gis_core.cli", "serve"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/indicators", timeout=5):
                return proc, base, log_path
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("server did not start:\n" + log_path.read_text()) from None
            time.sleep(0.3)


def visit(browser, base: str, path: str, viewport: dict) -> tuple[float, int, int, list[str]]:
    """Seconds until usable, bytes received, requests made, and any request that left the machine."""
    context = browser.new_context(locale="vi-VN", viewport=viewport)
    page = context.new_page()
    responses = []
    outside: list[str] = []
    page.on("requestfinished", lambda r: responses.append(r))
    page.on("request", lambda r: not r.url.startswith(("http://127.0.0.1", "data:")) and outside.append(r.url))
    try:
        started = time.perf_counter()
        page.goto(base + path, wait_until="commit")
        page.wait_for_function(USABLE[path], timeout=30_000, polling=25)
        elapsed = time.perf_counter() - started
        page.wait_for_load_state("networkidle")
        weight = sum(r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"] for r in responses)
        return elapsed, weight, len(responses), outside
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-scale", type=int, default=0, help="load the demo at this scale first if needed")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    settings = Settings.from_env()
    url = database_url(settings)
    incidents = ensure_loaded(url, args.load_scale)
    print(f"incidents in the database: {incidents:,}")
    proc, base, log_path = start_server(url, os.environ.get("IOCGIS_VAR_DIR"))
    failed = False
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            # one warm-up per page: the server's first request renders the page and opens the pool
            for path in USABLE:
                visit(browser, base, path, {"width": 1366, "height": 768})
            print(f"{'page':<8}{'viewport':<11}{'median s':>9}{'worst s':>9}{'KiB':>8}{'requests':>10}")
            for path, viewport in (("/", {"width": 1366, "height": 768}), ("/", {"width": 360, "height": 740}),
                                   ("/wall", {"width": 3840, "height": 2160})):
                runs = [visit(browser, base, path, viewport) for _ in range(args.rounds)]
                times = [r[0] for r in runs]
                leaks = sorted({u for r in runs for u in r[3]})
                median = statistics.median(times)
                print(f"{path:<8}{viewport['width']}x{viewport['height']:<6}{median:>9.2f}{max(times):>9.2f}"
                      f"{statistics.median(r[1] for r in runs) / 1024:>8.0f}{runs[0][2]:>10}"
                      + ("" if median < BUDGET_S else f"   over the {BUDGET_S:.0f} s budget"))
                if leaks:
                    print(f"   requests outside 127.0.0.1: {leaks}")
                failed |= median >= BUDGET_S or bool(leaks)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
        log_path.unlink(missing_ok=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
