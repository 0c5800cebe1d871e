"""The database restarted under the server's feet, on a cluster and a server of this test's own (the
shared session ones stay untouched): while it is down every request fails fast with a 503 (never a
500, never a hang); once it is back every endpoint answers again by itself within 10 s; no citizen
report the server accepted (201) is lost; the pools hold no more connections afterwards than their
sizes allow, and do not grow with more requests. bench/load_mixed.py --restart-at does the same with
64 clients for minutes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import psycopg
import pytest
from conftest import ensure_token, free_port
from psycopg_pool import ConnectionPool, PoolTimeout
from test_etl_files import copy_boundaries

from gis_core.cluster import throwaway_cluster
from gis_core.db import FailFastPool, with_dbname
from gis_core.migrate import migrate
from gis_core.settings import Settings

# One endpoint per way the app reaches the database: the OGC provider's pool, the app's psycopg
# pool (incidents, categories), the SQLAlchemy engine (places), the tile renderer.
ENDPOINTS = ["/ogc/collections/schools/items?f=json&limit=5", "/api/incidents?limit=5", "/api/report-categories",
             "/api/places?q=lao", "/ogc/collections/communes/tiles/WebMercatorQuad/8/111/201"]
FAIL_FAST_S = 2.0       # well under the pools' timeout (5 s), which every request used to wait out
RECOVER_S = 10.0
REPORT = {"category": "traffic", "location": {"type": "Point", "coordinates": [103.97, 22.48]},
          "description": "Đèn tín hiệu hỏng khi cơ sở dữ liệu khởi động lại"}
POOL_LIMIT = 10 + 8 + 5 + 8   # app pool, OGC provider pool, SQLAlchemy (2 + 3 overflow), MVT tiles pool
OPERATOR: dict[str, str] = {}   # the operators' token header, for /api/incidents (set by own_stack)


def get(url: str, timeout: float = 30, body: bytes | None = None) -> tuple[int, float, bytes]:
    """(status, seconds, body); a body makes it a JSON POST."""
    headers = {**(OPERATOR if "/api/incidents" in url else {}),
               **({"Content-Type": "application/json"} if body else {})}
    request = urllib.request.Request(url, body, headers)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, time.monotonic() - started, response.read()
    except urllib.error.HTTPError as err:
        return err.code, time.monotonic() - started, err.read()
    except OSError:
        return -1, time.monotonic() - started, b""   # no answer at all (a hang cut by the timeout)


def connections(admin_url: str) -> int:
    with psycopg.connect(admin_url) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'iocgis%%'"
                            " AND pid <> pg_backend_pid()").fetchone()[0]


@pytest.fixture
def own_cluster(tmp_root):
    """A cluster of this test's own (under tmp_root, which the server user can reach) and its dir."""
    tmp_path = tmp_root / f"faults-{free_port()}"
    tmp_path.mkdir()
    cluster = throwaway_cluster(tmp_path, free_port())
    try:
        yield cluster, tmp_path
    finally:
        cluster.stop()


@pytest.fixture
def own_stack(own_cluster, demo_url):
    """A server of this test's own on its own cluster, with the province's boundaries (to place
    reports) and the per-client report limit off (IOCGIS_REPORTS_PER_MIN=0: one client writes a lot)."""
    cluster, tmp_path = own_cluster
    admin = with_dbname(cluster.url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE faults")
    url = with_dbname(cluster.url, "faults")
    with psycopg.connect(url) as conn:
        migrate(conn, Settings().migrations_dir)
    copy_boundaries(demo_url, url)
    OPERATOR["Authorization"] = f"Bearer {ensure_token(url, 'operator')}"
    port = free_port()
    log = open(tmp_path / "server.log", "wb")
    env = {**os.environ, "DATABASE_URL": url, "IOCGIS_PORT": str(port), "IOCGIS_VAR_DIR": str(tmp_path / "var"),
           "IOCGIS_REPORTS_PER_MIN": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "gis_core.cli", "serve"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while get(f"{base}/ogc/collections?f=json", timeout=5)[0] != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server did not start:\n" + (tmp_path / "server.log").read_text())
        time.sleep(0.3)
    try:
        yield cluster, base, admin, url, tmp_path / "server.log"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.mark.slow
def test_database_restart_under_load(own_stack):
    cluster, base, admin, url, log = own_stack
    for path in ENDPOINTS:
        assert get(base + path)[0] == 200, path

    # Load in the background for the whole test, reads and citizen reports: only 2xx and 503 may
    # ever come back, and every report answered 201 must be in the database afterwards.
    seen: Counter = Counter()
    tickets: list[str] = []
    stop = threading.Event()

    def hammer(path: str) -> None:
        while not stop.is_set():
            status = get(base + path, timeout=RECOVER_S)[0]
            seen[(path, status)] += 1

    def write() -> None:
        while not stop.is_set():
            status, _, body = get(base + "/api/reports", timeout=RECOVER_S, body=json.dumps(REPORT).encode())
            seen[("/api/reports", status)] += 1
            if status == 201:
                tickets.append(json.loads(body)["ticket_code"])

    workers = [threading.Thread(target=hammer, args=(p,), daemon=True) for p in ENDPOINTS * 2]
    workers += [threading.Thread(target=write, daemon=True) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        time.sleep(1)
        cluster.stop()
        went_down = time.monotonic()
        time.sleep(1)
        down = {path: get(base + path)[:2] for path in ENDPOINTS}
        for path, (status, took) in down.items():
            assert status == 503, f"{path} answered {status} while the database was down"
            assert took < FAIL_FAST_S, f"{path} took {took:.1f}s to fail"
        # Down for half a minute in all: a pool whose reconnection attempts back off without a cap
        # waits long after the database is back (test_pool_fails_fast_and_refills_soon pins that).
        time.sleep(max(0.0, 30 - (time.monotonic() - went_down)))
        cluster.start()
        back = time.monotonic()
        pending = set(ENDPOINTS)
        while pending and time.monotonic() - back < RECOVER_S + FAIL_FAST_S:
            for path in list(pending):
                if get(base + path, timeout=RECOVER_S)[0] == 200:
                    pending.discard(path)
            time.sleep(0.2)
        recovered = time.monotonic() - back
        print(f"down: {', '.join(f'{s} in {t:.2f}s' for s, t in down.values())}; back after {recovered:.1f}s")
        assert not pending, f"not back after {recovered:.1f}s: {pending}"
        assert recovered < RECOVER_S, f"back only after {recovered:.1f}s"
        time.sleep(2)
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    statuses = Counter(status for (_, status), n in seen.items() for _ in range(n))
    assert set(statuses) <= {200, 201, 503}, f"unexpected answers under load: {statuses}\n{log.read_text()[-3000:]}"
    assert statuses[503] > 0 and statuses[200] > 0 and statuses[201] > 0
    print(f"answers under load: {dict(statuses)}")
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM incidents WHERE ticket_code = ANY(%s)", (tickets,)).fetchone()[0]
    assert stored == len(tickets) == len(set(tickets)), f"{len(tickets)} reports accepted, {stored} stored"

    # No leak: after recovery and another round of load, the pools hold at most their sizes.
    after = connections(admin)
    for _ in range(3):
        for path in ENDPOINTS:
            assert get(base + path)[0] == 200
    print(f"connections after recovery: {after}, after more load: {connections(admin)}")
    assert connections(admin) <= POOL_LIMIT
    assert connections(admin) <= max(after, 1) + 2


@pytest.mark.slow
def test_pool_fails_fast_and_refills_soon(own_cluster):
    """The pool behind every request: once one request found the database away the next ones fail
    in a fraction of a second (not the 5 s timeout each), and after an outage long enough for
    psycopg_pool's doubling reconnection delay to reach 16 s it has a connection again within
    seconds of the database's return."""
    cluster, _ = own_cluster
    pool = FailFastPool(cluster.url, min_size=1, max_size=4, timeout=5, check=ConnectionPool.check_connection,
                        open=False)
    pool.open(wait=True)
    try:
        cluster.stop()
        went_down = time.monotonic()
        with pytest.raises((PoolTimeout, psycopg.OperationalError)):
            with pool.connection() as conn:
                conn.execute("SELECT 1")
        fails = []
        while time.monotonic() - went_down < 16:      # requests keep coming while it is down
            started = time.monotonic()
            with pytest.raises(PoolTimeout):
                pool.getconn()
            fails.append(time.monotonic() - started)
            time.sleep(0.2)
        assert max(fails) < 0.5, f"failing took up to {max(fails):.2f}s"
        cluster.start()
        back = time.monotonic()
        while True:
            try:
                with pool.connection() as conn:
                    assert conn.execute("SELECT 1").fetchone() == (1,)
                break
            except PoolTimeout:
                # psycopg_pool's own reconnection policy took ~15 s here
                assert time.monotonic() - back < RECOVER_S / 2, "no connection within 5 s of the return"
                time.sleep(0.2)
        print(f"{len(fails)} fast failures (slowest {max(fails):.2f}s); connection again after "
              f"{time.monotonic() - back:.1f}s")
    finally:
        pool.close()
