"""Citizen reports under load: N concurrent clients POST /api/reports for D seconds against a real
`iocgis serve` that this script starts itself on a free port of 127.0.0.1.

Prints accepted reports per second and the p50/p99 latency of accepted requests, then checks that
every ticket the server handed out is in the database (and that none is there twice). The database
is a scratch PostGIS cluster made for the run (migrated, demo loaded: the province boundaries are
needed to place reports; durable settings, fsync on) unless --database-url names one that is
already migrated and loaded. The per-client rate limit is switched off for the server it starts:
all clients share 127.0.0.1.

    .venv/bin/python bench/reports_load.py [--clients 32] [--duration 60] [--database-url URL]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from loadkit import percentile, report_body, report_points, scratch_database, start_server, stop_server


def client(address: str, deadline: float, budget: list[int], lock: threading.Lock, places: list[tuple[float, float]],
           seed: int, out: dict) -> None:
    rng = random.Random(seed)
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    while time.monotonic() < deadline:
        with lock:
            if budget[0] <= 0:
                break
            budget[0] -= 1
        body = report_body(rng, places)
        started = time.perf_counter()
        try:
            conn.request("POST", "/api/reports", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            out["errors"].append(type(exc).__name__)
            continue
        elapsed = time.perf_counter() - started
        if status == 201:
            out["latency"].append(elapsed)
            out["tickets"].append(json.loads(payload)["ticket_code"])
        else:
            out["errors"].append(str(status))
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--max-requests", type=int, default=500_000, help="stop after this many requests in all")
    parser.add_argument("--database-url", default=None, help="a migrated database with the demo loaded")
    parser.add_argument("--pool-max", type=int, default=20, help="the server's connection pool size")
    args = parser.parse_args()
    if not (1 <= args.clients <= 256 and 0 < args.duration <= 600 and args.max_requests > 0):
        raise SystemExit("--clients 1..256, --duration 0..600 s, --max-requests > 0")

    root = Path(tempfile.mkdtemp(prefix="iocgis-bench-reports-"))
    cluster = proc = None
    try:
        if args.database_url:
            url = args.database_url
        else:
            started = time.monotonic()
            cluster, url = scratch_database(root)
            print(f"scratch database ready in {time.monotonic() - started:.1f}s (demo loaded, fsync on)")
        proc, address = start_server(url, root / "var", root / "server.log", args.pool_max)
        places = report_points(url, 2000)
        with psycopg.connect(url) as conn:
            before = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]

        results = [{"latency": [], "tickets": [], "errors": []} for _ in range(args.clients)]
        budget, lock = [args.max_requests], threading.Lock()
        started = time.monotonic()
        deadline = started + args.duration
        threads = [threading.Thread(target=client, args=(address, deadline, budget, lock, places, i, results[i]))
                   for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started

        latency = sorted(x for r in results for x in r["latency"])
        tickets = [t for r in results for t in r["tickets"]]
        errors: dict[str, int] = {}
        for r in results:
            for e in r["errors"]:
                errors[e] = errors.get(e, 0) + 1
        with psycopg.connect(url) as conn:
            found = conn.execute("SELECT count(*) FROM incidents WHERE ticket_code = ANY(%s)", (tickets,)).fetchone()[0]
            after = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
        p50, p99 = percentile(latency, 0.5) * 1000, percentile(latency, 0.99) * 1000
        print(f"clients={args.clients} duration={elapsed:.1f}s accepted={len(tickets)} "
              f"rejected/failed={sum(errors.values())} {errors or ''}")
        print(f"accepted reports/s: {len(tickets) / elapsed:.1f}   p50: {p50:.1f} ms   p99: {p99:.1f} ms")
        print(f"verification: {found} of {len(tickets)} accepted tickets in the database, "
              f"{len(set(tickets))} distinct, incidents {before} -> {after}")
        if found != len(tickets) or len(set(tickets)) != len(tickets) or after - before != len(tickets):
            raise SystemExit("FAILED: accepted tickets and stored incidents disagree")
    finally:
        if proc is not None:
            stop_server(proc)
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
