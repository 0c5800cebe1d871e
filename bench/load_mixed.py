"""Mixed reads and writes from 64 concurrent clients against the real server, optionally with the
database restarted in the middle (issue #8: staying up under load and faults).

Everything runs on 127.0.0.1 and is made here: a scratch PostGIS cluster (durable settings; the demo
province loaded, `--scale 1` by default: 10,000 incidents) and `iocgis serve --workers 2` (granian)
on a free port, with the per-client limit on citizen reports switched off by its documented setting
(IOCGIS_REPORTS_PER_MIN=0), since every client here shares one address. Each client is a thread with
one keep-alive connection, picking requests from a weighted mix: OGC items pages, bbox queries and
items by id, vector tiles (layers and the base map), the map's JSON (indicators, choropleths, clusters,
commune drill-down), the wall's JSON, the HTML map page, reading a ticket back, and writes (citizen
reports, POST /api/reports; every accepted ticket is recorded). Bounded by --duration and
--max-requests.

Prints per request kind the count, the errors (anything but 2xx), p50/p99 of successful answers, the
overall requests per second, and the CPU the clients themselves used (they share the machine with
the server). Then checks that every accepted write is in the database.

With `--restart-at S --down D` the cluster is stopped (pg_ctl stop -m fast, as gis_core.cluster
does) S seconds into the run, kept down D seconds and started again. Then 503 is expected, and
only 503: the report gives the window of 503s relative to the stop and the start, any other
non-2xx answer in it (must be none), the slowest answer (no hang), the time from the database's
return to the first success and to every kind succeeding again (goal: 10 s), and the server's
connections in pg_stat_activity before and after (no leak beyond the pools' sizes).

    .venv/bin/python bench/load_mixed.py [--duration 300] [--clients 64]
    .venv/bin/python bench/load_mixed.py --restart-at 120 --down 30
    .venv/bin/python bench/load_mixed.py --token TOKEN   # sent as Authorization: Bearer

Exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import random
import resource
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from loadkit import (
    percentile,
    report_body,
    report_points,
    scratch_database,
    start_server,
    stop_server,
    tree_cpu_seconds,
)
from psycopg import sql

from gis_core.registry import Registry
from gis_core.settings import Settings

RECOVER_S = 10.0        # the goal: everything answers again within 10 s of the database's return
HANG_S = 5.0            # the pools' timeout: no request in flight during the outage may wait longer
# Connections one server process may hold: its app pool (--pool-max), the OGC provider's and the
# vector tiles' pools (8 each) and the SQLAlchemy engine (2 + 3 overflow), as tests/test_faults.py.
OTHER_POOLS = 8 + 8 + 5


@dataclass
class Request:
    method: str
    path: str
    body: bytes | None = None


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix. `make` returns the next request (None: not possible yet);
    a write kind's `accepted` turns a 2xx body into the key it stored, and `verify` counts how many
    of those keys the database holds."""
    name: str
    weight: float
    make: Callable[[random.Random], Request | None]
    needs_db: bool = True
    accepted: Callable[[bytes], str] | None = None
    verify: Callable[[psycopg.Connection, list[str]], int] | None = None


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The Web Mercator tile (x, y) holding a point at zoom z."""
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def discover(url: str, address: str, registry: Registry) -> dict:
    """What the clients ask about: layers with ids, commune codes, indicators, tile sets, the extent."""
    layers = [layer for layer in registry.published() if layer.id != "provinces"]
    ids: dict[str, list[str]] = {}
    with psycopg.connect(url) as conn:
        for layer in layers:
            rows = conn.execute(sql.SQL("SELECT {}::text FROM {} ORDER BY random() LIMIT 200").format(
                sql.Identifier(layer.id_field), sql.Identifier(layer.table))).fetchall()
            if rows:
                ids[layer.id] = [r[0] for r in rows]
        communes = [r[0] for r in conn.execute("SELECT code FROM communes").fetchall()]
        west, south, east, north = conn.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM admin_units"
            " WHERE level = 'province' AND valid_to IS NULL) p").fetchone()
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/api/indicators")
    indicators = [i["code"] for i in json.loads(conn.getresponse().read())]
    tiled = []
    for layer_id in ids:
        conn.request("GET", f"/ogc/collections/{layer_id}/tiles?f=json")
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            tiled.append(layer_id)
    conn.close()
    if not (ids and communes and indicators and tiled):
        raise SystemExit(f"nothing to ask for: layers {list(ids)}, {len(communes)} communes, "
                         f"indicators {indicators}, tiled {tiled}")
    return {"ids": ids, "communes": communes, "indicators": indicators, "tiled": tiled,
            "extent": (west, south, east, north)}


def read_kinds(found: dict) -> list[Kind]:
    west, south, east, north = found["extent"]
    layer_ids = sorted(found["ids"])

    def point(rng: random.Random) -> tuple[float, float]:
        return rng.uniform(west, east), rng.uniform(south, north)

    def bbox(rng: random.Random, size: float) -> str:
        lon, lat = point(rng)
        return f"{lon - size:.5f},{lat - size:.5f},{lon + size:.5f},{lat + size:.5f}"

    def item(rng: random.Random) -> Request:
        layer = rng.choice(layer_ids)
        return Request("GET", f"/ogc/collections/{layer}/items/{rng.choice(found['ids'][layer])}?f=json")

    def tile_path(rng: random.Random) -> str:
        z = rng.randint(8, 14)
        x, y = tile_of(*point(rng), z)
        return f"WebMercatorQuad/{z}/{y}/{x}"

    return [
        Kind("ogc_items_page", 10, lambda r: Request(
            "GET", f"/ogc/collections/{r.choice(layer_ids)}/items?f=json&limit=50&offset={r.randrange(0, 500, 50)}")),
        Kind("ogc_bbox", 10, lambda r: Request(
            "GET", f"/ogc/collections/{r.choice(layer_ids)}/items?f=json&limit=100&bbox={bbox(r, 0.05)}")),
        Kind("ogc_item", 10, item),
        Kind("tile_layer", 18, lambda r: Request(
            "GET", f"/ogc/collections/{r.choice(found['tiled'])}/tiles/{tile_path(r)}")),
        Kind("tile_basemap", 12, lambda r: Request("GET", f"/ogc/tiles/{tile_path(r)}")),
        Kind("map_indicators", 3, lambda r: Request("GET", "/api/indicators")),
        Kind("map_choropleth", 4, lambda r: Request(
            "GET", f"/api/indicators/{r.choice(found['indicators'])}/choropleth")),
        Kind("map_clusters", 8, lambda r: Request(
            "GET", f"/api/layers/incidents/clusters?bbox={bbox(r, 0.3)}&zoom={r.randint(9, 13)}")),
        Kind("map_commune", 3, lambda r: Request("GET", f"/api/communes/{r.choice(found['communes'])}")),
        Kind("wall_summary", 3, lambda r: Request("GET", "/api/wall/summary")),
        Kind("wall_incidents", 3, lambda r: Request("GET", "/api/wall/incidents")),
        Kind("html_map", 2, lambda r: Request("GET", "/"), needs_db=False),
    ]


def report_kinds(url: str, accepted: dict[str, list[str]]) -> list[Kind]:
    """Public writes (no login): citizen reports, and citizens reading their ticket back."""
    places = report_points(url, 2000)
    tickets = accepted.setdefault("report_post", [])

    def verify(conn: psycopg.Connection, codes: list[str]) -> int:
        return conn.execute("SELECT count(*) FROM incidents WHERE ticket_code = ANY(%s)", (codes,)).fetchone()[0]

    return [
        Kind("report_post", 10, lambda r: Request("POST", "/api/reports", report_body(r, places)),
             accepted=lambda body: json.loads(body)["ticket_code"], verify=verify),
        Kind("report_track", 4, lambda r: Request("GET", f"/api/track/{r.choice(tickets)}") if tickets else None),
    ]


# Write mixes by name, each a function (database url, {write kind: keys accepted so far}) -> kinds.
# Operator and OGC API transactions will need a token (--token): their mix goes here.
WRITE_MIXES = {"reports": report_kinds}


class Client(threading.Thread):
    """One user agent: one keep-alive connection, requests back to back, every answer recorded as
    (kind index, start since t0, seconds, status); status -1 is no answer (error named in `failures`)."""

    def __init__(self, address: str, kinds: list[Kind], seed: int, t0: float, deadline: float,
                 budget: Callable[[], bool], headers: dict[str, str], accepted: dict[str, list[str]], timeout: float):
        super().__init__(daemon=True)
        self.host, port = address.split(":")
        self.port = int(port)
        self.kinds, self.rng, self.t0, self.deadline, self.budget = kinds, random.Random(seed), t0, deadline, budget
        self.headers, self.accepted, self.timeout = headers, accepted, timeout
        self.weights = list(itertools.accumulate(k.weight for k in kinds))
        self.records: list[tuple[int, float, float, int]] = []
        self.failures: Counter = Counter()
        self.retries = 0

    def run(self) -> None:
        conn, reused = None, False
        while time.monotonic() < self.deadline and self.budget():
            index = self.rng.choices(range(len(self.kinds)), cum_weights=self.weights)[0]
            request = self.kinds[index].make(self.rng)
            if request is None:
                continue
            headers = dict(self.headers)
            if request.body is not None:
                headers["Content-Type"] = "application/json"
            started = time.monotonic()
            for attempt in (1, 2):
                if conn is None:
                    conn, reused = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout), False
                try:
                    conn.request(request.method, request.path, request.body, headers)
                    response = conn.getresponse()
                    body = response.read()
                    status = response.status
                    reused = True
                    break
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = None
                    # A keep-alive connection the server closed while idle fails before any answer:
                    # the request never reached the app, so it is sent again on a new connection, as
                    # browsers do. Anything else is a failure.
                    stale = reused and isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError,
                                                        BrokenPipeError))
                    if attempt == 1 and stale:
                        self.retries += 1
                        continue
                    self.failures[(self.kinds[index].name, type(exc).__name__)] += 1
                    status, body = -1, b""
                    break
            elapsed = time.monotonic() - started
            self.records.append((index, started - self.t0, elapsed, status))
            kind = self.kinds[index]
            if kind.accepted is not None and 200 <= status < 300:
                self.accepted[kind.name].append(kind.accepted(body))
        if conn is not None:
            conn.close()


def server_connections(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'iocgis%%'"
                            " AND pid <> pg_backend_pid()").fetchone()[0]


class Restarter(threading.Thread):
    """Stops the cluster at `at` seconds after t0, keeps it down `down` seconds, starts it again;
    records when each step began and ended (seconds since t0)."""

    def __init__(self, cluster, url: str, t0: float, at: float, down: float):
        super().__init__(daemon=True)
        self.cluster, self.url, self.t0, self.at, self.down = cluster, url, t0, at, down
        self.times: dict[str, float] = {}
        self.connections_before: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            time.sleep(max(0.0, self.t0 + self.at - time.monotonic()))
            self.connections_before = server_connections(self.url)
            self.times["stop"] = time.monotonic() - self.t0
            self.cluster.stop()
            self.times["stopped"] = time.monotonic() - self.t0
            time.sleep(self.down)
            self.times["start"] = time.monotonic() - self.t0
            self.cluster.start()
            self.times["up"] = time.monotonic() - self.t0   # pg_ctl start -w: accepting connections
        except BaseException as exc:    # reported by the main thread
            self.error = exc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="stop after this many requests in all")
    parser.add_argument("--scale", type=int, default=1, help="demo scale (1: 10,000 incidents)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker")
    parser.add_argument("--pool-max", type=int, default=10, help="each worker's app connection pool size")
    parser.add_argument("--writes", choices=sorted(WRITE_MIXES), default="reports", help="the write mix")
    parser.add_argument("--token", default=None, help="an API token, sent as Authorization: Bearer")
    parser.add_argument("--timeout", type=float, default=30.0, help="client socket timeout, seconds")
    parser.add_argument("--restart-at", type=float, default=None, help="stop the database this many seconds in")
    parser.add_argument("--down", type=float, default=30.0, help="seconds the database stays down")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, cluster)")
    args = parser.parse_args()
    if not (1 <= args.clients <= 256 and 0 < args.duration <= 900 and args.max_requests > 0):
        raise SystemExit("--clients 1..256, --duration 0..900 s, --max-requests > 0")
    if args.restart_at is not None and args.restart_at + args.down + 2 * RECOVER_S > args.duration:
        raise SystemExit("--restart-at + --down + 20 s must fit in --duration (time to see the recovery)")

    root = Path(tempfile.mkdtemp(prefix="iocgis-bench-mixed-"))
    cluster = proc = None
    try:
        started = time.monotonic()
        cluster, url = scratch_database(root, args.scale)
        print(f"scratch database ready in {time.monotonic() - started:.1f}s (demo scale {args.scale}, fsync on)")
        proc, address = start_server(url, root / "var", root / "server.log", args.pool_max, args.workers,
                                     args.threads)
        print(f"server: iocgis serve --workers {args.workers} --threads {args.threads} on {address}, "
              f"app pool {args.pool_max} per worker")
        accepted: dict[str, list[str]] = {}
        found = discover(url, address, Registry.load(Settings().layers_dir))
        kinds = read_kinds(found) + WRITE_MIXES[args.writes](url, accepted)
        for kind in kinds:
            accepted.setdefault(kind.name, [])
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        with psycopg.connect(url) as conn:
            incidents_before = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]

        counter = itertools.count()
        budget = lambda: next(counter) < args.max_requests  # noqa: E731  (itertools.count is thread-safe)
        t0 = time.monotonic()
        deadline = t0 + args.duration
        clients = [Client(address, kinds, seed, t0, deadline, budget, headers, accepted, args.timeout)
                   for seed in range(args.clients)]
        restarter = (Restarter(cluster, url, t0, args.restart_at, args.down)
                     if args.restart_at is not None else None)
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu_before = tree_cpu_seconds(proc.pid)
        for c in clients:
            c.start()
        if restarter:
            restarter.start()
        for c in clients:
            c.join(args.duration + args.timeout + 60)
        elapsed = time.monotonic() - t0
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = tree_cpu_seconds(proc.pid) - server_cpu_before
        if restarter:
            restarter.join(120)
            if restarter.error:
                raise restarter.error
        stuck = sum(c.is_alive() for c in clients)
        connections_end = server_connections(url)
        time.sleep(5)
        connections_idle = server_connections(url)

        records = [r for c in clients for r in c.records]
        failures = sum((c.failures for c in clients), Counter())
        client_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
        ok = report(args, kinds, records, failures, elapsed, restarter, stuck)
        print(f"load: {len(records)} requests in {elapsed:.1f}s = {len(records) / elapsed:.1f} req/s; "
              f"stale keep-alive resends {sum(c.retries for c in clients)}")
        print(f"CPU (cores busy on average, {os.cpu_count()} on the machine): clients {client_cpu / elapsed:.2f}, "
              f"server (process tree) {server_cpu / elapsed:.2f}; load average {os.getloadavg()[0]:.1f}")

        ok &= verify_writes(url, kinds, accepted, records, incidents_before)
        limit = args.workers * (args.pool_max + OTHER_POOLS)
        before = restarter.connections_before if restarter else None
        print(f"server connections (pg_stat_activity, application_name iocgis*): "
              f"{'before the restart ' + str(before) + ', ' if before is not None else ''}"
              f"at the end {connections_end}, 5 s later {connections_idle}; pools' limit {limit}")
        if max(connections_end, connections_idle) > limit:
            print("FAILED: more server connections than the pools allow (a leak)")
            ok = False
        print("RESULT:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if proc is not None:
            stop_server(proc)
        if cluster is not None:
            cluster.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def report(args, kinds: list[Kind], records: list, failures: Counter, elapsed: float,
           restarter: Restarter | None, stuck: int) -> bool:
    """Print the per-kind table and, after a restart, the outage; True when every check passed."""
    ok = True
    window = None
    if restarter:
        t = restarter.times
        window = (t["stop"], t["up"] + RECOVER_S)
    print(f"{'kind':<16}{'count':>8}{'2xx':>8}{'503':>6}{'other':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    unexpected: Counter = Counter()
    for index, kind in enumerate(kinds):
        mine = [r for r in records if r[0] == index]
        good = sorted(r[2] for r in mine if 200 <= r[3] < 300)
        n503 = sum(1 for r in mine if r[3] == 503)
        other = [r for r in mine if not (200 <= r[3] < 300 or r[3] == 503)]
        for r in mine:
            in_window = window is not None and window[0] <= r[1] + r[2] and r[1] <= window[1]
            if not (200 <= r[3] < 300) and not (r[3] == 503 and in_window):
                unexpected[(kind.name, r[3])] += 1
        print(f"{kind.name:<16}{len(mine):>8}{len(good):>8}{n503:>6}{len(other):>7}"
              f"{percentile(good, 0.5) * 1000:>9.1f}{percentile(good, 0.99) * 1000:>9.1f}"
              f"{max((r[2] for r in mine), default=0) * 1000:>9.0f}")
    everything = sorted(r[2] for r in records if 200 <= r[3] < 300)
    print(f"{'all':<16}{len(records):>8}{len(everything):>8}{'':>13}"
          f"{percentile(everything, 0.5) * 1000:>9.1f}{percentile(everything, 0.99) * 1000:>9.1f}")
    errors = sum(unexpected.values())
    print(f"errors (non-2xx outside the outage, anything but 2xx/503 in it): {errors} {dict(unexpected) or ''}"
          f"{' no answer: ' + str(dict(failures)) if failures else ''}")
    if errors or stuck:
        ok = False
    if stuck:
        print(f"FAILED: {stuck} clients still waiting for an answer after the run")
    if restarter:
        ok &= report_outage(kinds, records, restarter.times)
    return ok


def report_outage(kinds: list[Kind], records: list, t: dict[str, float]) -> bool:
    ok = True
    print(f"database: stop at {t['stop']:.1f}s (down after {t['stopped'] - t['stop']:.1f}s), "
          f"start at {t['start']:.1f}s, accepting connections at {t['up']:.1f}s")
    ends_503 = sorted(r[1] + r[2] for r in records if r[3] == 503)
    if not ends_503:
        print("FAILED: no 503 at all while the database was down")
        return False
    print(f"503s: {len(ends_503)}, first {ends_503[0] - t['stop']:+.2f}s after the stop, "
          f"last {ends_503[-1] - t['up']:+.2f}s after the database was back")
    # Answers given while the database was down, and every request that was waiting at some point then.
    during = [r for r in records if t["stopped"] <= r[1] + r[2] <= t["start"]]
    waiting = [r for r in records if r[1] <= t["start"] and r[1] + r[2] >= t["stopped"]]
    slow = max((r[2] for r in waiting), default=0.0)
    latency_503 = sorted(r[2] for r in during if r[3] == 503)
    print(f"while down ({t['start'] - t['stopped']:.1f}s): {len(during)} answers "
          f"({len(during) / max(t['start'] - t['stopped'], 0.1):.0f}/s), "
          f"{sum(1 for r in during if 200 <= r[3] < 300)} of them 2xx (pages that need no database); "
          f"503 in p50 {percentile(latency_503, 0.5) * 1000:.0f} ms / "
          f"p99 {percentile(latency_503, 0.99) * 1000:.0f} ms; slowest request in flight then {slow:.1f}s")
    if slow > HANG_S:
        print(f"FAILED: an answer took {slow:.1f}s while the database was down (bound {HANG_S:.0f}s)")
        ok = False
    db_kinds = {i for i, k in enumerate(kinds) if k.needs_db}
    firsts = [r[1] + r[2] for r in records if r[0] in db_kinds and 200 <= r[3] < 300 and r[1] + r[2] > t["up"]]
    first = min(firsts, default=math.inf) - t["up"]
    back = {}
    for index in db_kinds:
        failed = [r[1] + r[2] for r in records if r[0] == index and not 200 <= r[3] < 300 and r[1] >= t["stop"]]
        back[kinds[index].name] = max(max(failed, default=t["up"]) - t["up"], 0.0)
    slowest = max(back, key=back.get)
    print(f"recovery: first success {first:.2f}s after the database was back, every kind succeeding after "
          f"{back[slowest]:.2f}s (last: {slowest}; goal {RECOVER_S:.0f}s)")
    print("  last failure per kind after the return: " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(back.items())))
    if back[slowest] > RECOVER_S:
        print("FAILED: not every kind succeeded within the goal")
        ok = False
    return ok


def verify_writes(url: str, kinds: list[Kind], accepted: dict[str, list[str]], records: list,
                  incidents_before: int) -> bool:
    """Every accepted write is in the database, once."""
    ok = True
    with psycopg.connect(url) as conn:
        for index, kind in enumerate(kinds):
            if kind.verify is None:
                continue
            keys = accepted[kind.name]
            stored = kind.verify(conn, keys)
            unanswered = sum(1 for r in records if r[0] == index and r[3] == -1)
            print(f"writes {kind.name}: {len(keys)} accepted, {stored} of them in the database, "
                  f"{len(set(keys))} distinct; {unanswered} sent without an answer")
            if stored != len(keys) or len(set(keys)) != len(keys):
                print(f"FAILED: {len(keys) - stored} accepted writes lost")
                ok = False
        incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
    print(f"incidents {incidents_before} -> {incidents}")
    return ok


if __name__ == "__main__":
    raise SystemExit(main())
