"""The database restarted under the server's feet, on a cluster and a server of this test's own (the
shared session ones stay untouched): while it is down every request fails fast with a 503 (never a
500, never a hang); once it is back every endpoint answers again by itself within 10 s; the pools
hold no more connections afterwards than their sizes allow, and do not grow with more requests."""

from __future__ import annotations

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
from test_etl_files import copy_boundaries

from gis_core.cluster import throwaway_cluster
from gis_core.db import with_dbname
from gis_core.migrate import migrate
from gis_core.settings import Settings

# One endpoint per way the app reaches the database: the OGC provider's pool, the app's psycopg
# pool (incidents, categories), the SQLAlchemy engine (places), the tile renderer.
ENDPOINTS = ["/ogc/collections/schools/items?f=json&limit=5", "/api/incidents?limit=5", "/api/report-categories",
             "/api/places?q=lao", "/ogc/collections/communes/tiles/WebMercatorQuad/8/111/201"]
FAIL_FAST_S = 7.0       # pool timeout (5 s) and a margin
RECOVER_S = 10.0
POOL_LIMIT = 10 + 8 + 5 + 8   # app pool, OGC provider pool, SQLAlchemy (2 + 3 overflow), MVT tiles pool
OPERATOR: dict[str, str] = {}   # the operators' token header, for /api/incidents (set by own_stack)


def get(url: str, timeout: float = 30) -> tuple[int, float]:
    started = time.monotonic()
    headers = OPERATOR if "/api/incidents" in url else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            response.read()
            return response.status, time.monotonic() - started
    except urllib.error.HTTPError as err:
        err.read()
        return err.code, time.monotonic() - started
    except OSError:
        return -1, time.monotonic() - started   # no answer at all (a hang cut by the timeout)


def connections(admin_url: str) -> int:
    with psycopg.connect(admin_url) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'iocgis%%'"
                            " AND pid <> pg_backend_pid()").fetchone()[0]


@pytest.fixture
def own_stack(tmp_root, demo_url):
    """A cluster and a server of this test's own (under tmp_root, which the server user can reach)."""
    tmp_path = tmp_root / f"faults-{free_port()}"
    tmp_path.mkdir()
    cluster = throwaway_cluster(tmp_path, free_port())
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
    env = {**os.environ, "DATABASE_URL": url, "IOCGIS_PORT": str(port), "IOCGIS_VAR_DIR": str(tmp_path / "var")}
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
        yield cluster, base, admin, tmp_path / "server.log"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        cluster.stop()


@pytest.mark.slow
def test_database_restart_under_load(own_stack):
    cluster, base, admin, log = own_stack
    for path in ENDPOINTS:
        assert get(base + path)[0] == 200, path

    # Load in the background for the whole test: only 200s and 503s may ever come back.
    seen: Counter = Counter()
    stop = threading.Event()

    def hammer(path: str) -> None:
        while not stop.is_set():
            status, _ = get(base + path, timeout=FAIL_FAST_S + 5)
            seen[(path, status)] += 1

    workers = [threading.Thread(target=hammer, args=(p,), daemon=True) for p in ENDPOINTS * 2]
    for w in workers:
        w.start()
    try:
        time.sleep(1)
        cluster.stop()
        went_down = time.monotonic()
        time.sleep(1)
        down = {path: get(base + path) for path in ENDPOINTS}
        for path, (status, took) in down.items():
            assert status == 503, f"{path} answered {status} while the database was down"
            assert took < FAIL_FAST_S, f"{path} took {took:.1f}s to fail"
        # Down for half a minute in all: long enough for the pools' reconnection attempts to back off
        # past 30 s, which a pool with an uncapped backoff would wait out after the database is back.
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
    assert set(statuses) <= {200, 503}, f"unexpected answers under load: {statuses}\n{log.read_text()[-3000:]}"
    assert statuses[503] > 0 and statuses[200] > 0
    print(f"answers under load: {dict(statuses)}")

    # No leak: after recovery and another round of load, the pools hold at most their sizes.
    after = connections(admin)
    for _ in range(3):
        for path in ENDPOINTS:
            assert get(base + path)[0] == 200
    print(f"connections after recovery: {after}, after more load: {connections(admin)}")
    assert connections(admin) <= POOL_LIMIT
    assert connections(admin) <= max(after, 1) + 2
