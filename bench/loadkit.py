"""What the load benchmarks share: a scratch PostGIS cluster with the demo loaded, our server started
on a free port of 127.0.0.1, citizen-report bodies, percentiles and CPU accounting.

Imported by bench/reports_load.py and bench/load_mixed.py (run as scripts: bench/ is on sys.path).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg

HOST = "127.0.0.1"     # never anywhere else
CATEGORIES = ("traffic", "environment", "urban_order", "infrastructure", "security", "other")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def scratch_database(root: Path, scale: int = 1):
    """A fresh cluster under `root`, migrated, with the demo province loaded at `scale`. Durable
    settings (fsync and synchronous commit on, unlike the tests' throwaway clusters): an accepted
    write must survive the database's restart. Returns (cluster, url)."""
    from gis_core.cluster import Cluster
    from gis_core.demo import load_demo
    from gis_core.migrate import migrate
    from gis_core.settings import Settings

    root.chmod(0o755)   # the unprivileged PostgreSQL user walks down to its data directory
    cluster = Cluster(root=root / "pg", port=free_port())
    cluster.root.mkdir(parents=True)
    cluster.up()
    url = cluster.url
    with psycopg.connect(url) as conn:
        migrate(conn, Settings().migrations_dir)
    with psycopg.connect(url) as conn:
        load_demo(conn, Settings(database_url=url, var_dir=root / "var"), scale=scale)
    return cluster, url


def start_server(url: str, var_dir: Path, log_path: Path, pool_max: int, workers: int = 0,
                 threads: int = 8) -> tuple[subprocess.Popen, str]:
    """`iocgis serve` (granian with `workers` processes when > 0) on a free port; returns (process,
    "127.0.0.1:port") once it answers. The per-client limit on citizen reports is switched off
    (IOCGIS_REPORTS_PER_MIN=0): every benchmark client shares 127.0.0.1."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "IOCGIS_HOST": HOST, "IOCGIS_PORT": str(port),
           "IOCGIS_VAR_DIR": str(var_dir), "IOCGIS_REPORTS_PER_MIN": "0", "IOCGIS_POOL_MAX": str(pool_max),
           "IOCGIS_CAMERA_SWEEP_S": "0"}
    command = [sys.executable, "-m", "gis_core.cli", "serve"]
    if workers:
        command += ["--workers", str(workers), "--threads", str(threads)]
    log = open(log_path, "wb")
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 90
    while True:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", "/api/report-categories")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, f"{HOST}:{port}"
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("server did not start:\n" + log_path.read_text(errors="replace")[-3000:])
        time.sleep(0.3)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()        # the server stops its workers on SIGTERM
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def report_points(url: str, n: int) -> list[tuple[float, float]]:
    """n points inside the province, where citizen reports are accepted."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, %s, 42))).geom g"
                            " FROM admin_units WHERE level = 'province' AND valid_to IS NULL) p", (n,)).fetchall()
    if not rows:
        raise SystemExit("no province in this database: load the demo (iocgis demo load) first")
    return [(round(x, 6), round(y, 6)) for x, y in rows]


def report_body(rng: random.Random, places: list[tuple[float, float]]) -> bytes:
    """One citizen report as POST /api/reports takes it (JSON)."""
    lon, lat = rng.choice(places)
    return json.dumps({"category": rng.choice(CATEGORIES), "location": {"type": "Point", "coordinates": [lon, lat]},
                       "description": f"Phản ánh thử tải số {rng.randrange(10**9)}: đèn đường hỏng",
                       "contact": f"09{rng.randrange(10**8):08d}"}).encode()


def percentile(ordered: list[float], q: float) -> float:
    """The q-quantile (0..1) of an ascending list, nearest rank; NaN when empty."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a live process and all its live descendants (from /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()   # after "pid (comm) "
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(pid, 0.0) for pid in tree)
