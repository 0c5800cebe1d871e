"""`iocgis etl` as a steward runs it, in real processes: load, dry run, runs, rejects, a run killed
with SIGKILL halfway through, declared sources, a drop directory, and the scheduler stopping on
SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from psycopg import sql
from test_etl_files import SCHOOLS, copy_boundaries, frame

CLI = [sys.executable, "-m", "gis_core.cli", "etl"]


@pytest.fixture
def etl_url(db_url, demo_url):
    copy_boundaries(demo_url, db_url)
    return db_url


def iocgis(url: str, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url}
    proc = subprocess.run([*CLI, *map(str, args)], env=env, capture_output=True, text=True, timeout=300, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def checksum(url: str, table: str) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.SQL("SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t.id)), '')"
                                    " FROM {} t").format(sql.Identifier(table))).fetchone()


def test_load_runs_rejects_and_dry_run(etl_url, tmp_path):
    path = tmp_path / "truong.geojson"
    frame([*SCHOOLS, {**SCHOOLS[0], "code": "TH-HN", "lon": 105.85, "lat": 21.03}]).to_file(path, driver="GeoJSON")
    dry = iocgis(etl_url, "load", "schools", path, "--dry-run")
    assert "dry run" in dry.stdout and "inserted 3" in dry.stdout and "outside the province" in dry.stdout
    assert checksum(etl_url, "schools")[0] == 0
    done = iocgis(etl_url, "load", "schools", path)
    assert "succeeded" in done.stdout and "inserted 3" in done.stdout and "rejected 1" in done.stdout
    again = iocgis(etl_url, "load", "schools", path)
    assert "unchanged" in again.stdout and "Nothing changed" in again.stdout and "Không có thay đổi" in again.stdout
    listing = iocgis(etl_url, "runs").stdout
    assert "unchanged" in listing and "succeeded" in listing
    run_id = int(done.stdout.split("run ", 1)[1].split(":", 1)[0])
    rej = iocgis(etl_url, "rejects", run_id).stdout
    assert "row 4 [geom]" in rej and "ngoài tỉnh" in rej and "outside the province" in rej


def test_refusals_are_bilingual_and_exit_non_zero(etl_url, tmp_path):
    path = tmp_path / "truong.csv"
    path.write_text("code,name,level,ownership,lon,lat\nTH-1,Trường A,primary,public,103.97,22.48\n")
    proc = iocgis(etl_url, "load", "schools", path, check=False)
    assert proc.returncode == 1
    assert "hệ tọa độ" in proc.stderr and "coordinate reference system" in proc.stderr
    bad = iocgis(etl_url, "load", "schools", path, "--crs", "EPSG:999999", check=False)
    assert bad.returncode == 2 and "--crs" in bad.stderr
    assert "succeeded" in iocgis(etl_url, "load", "schools", path, "--crs", "EPSG:4326").stdout


def big_file(path, n: int) -> None:
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(103.93, 104.0, n), rng.uniform(22.42, 22.5, n)
    gpd.GeoDataFrame({"code": [f"K-{i:07d}" for i in range(n)], "name": [f"Trường số {i}" for i in range(n)],
                      "level": "primary", "ownership": "public", "students": rng.integers(10, 900, n)},
                     geometry=shapely.points(lon, lat), crs=4326).to_file(path, driver="GPKG")


def test_a_run_killed_halfway_leaves_the_layer_as_it_was_and_the_rerun_completes(etl_url, tmp_path):
    small = tmp_path / "small.gpkg"
    frame(SCHOOLS).to_file(small, driver="GPKG")
    iocgis(etl_url, "load", "schools", small)
    before = checksum(etl_url, "schools")
    history_before = checksum(etl_url, "etl_rejects")

    n = 150_000
    big = tmp_path / "big.gpkg"
    big_file(big, n)
    env = {**os.environ, "DATABASE_URL": etl_url}
    proc = subprocess.Popen([*CLI, "load", "schools", str(big)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # Wait until the load is writing: rows flowing into staging (COPY) or the upsert running.
    writing = None
    deadline = time.monotonic() + 120
    with psycopg.connect(etl_url, autocommit=True) as watch:
        while writing is None and time.monotonic() < deadline and proc.poll() is None:
            writing = watch.execute(
                "SELECT coalesce(p.tuples_processed::text, left(a.query, 30)) FROM pg_stat_activity a"
                " LEFT JOIN pg_stat_progress_copy p ON p.pid = a.pid"
                " WHERE a.application_name = 'iocgis-etl' AND a.datname = current_database()"
                "   AND ((p.tuples_processed > 1000) OR (a.state = 'active' AND a.query LIKE 'INSERT INTO%%'))"
            ).fetchone()
            time.sleep(0.01)
        assert writing is not None, "the load never reached its write phase"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        # The server notices the dead client and rolls its transaction back.
        while watch.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'iocgis-etl'"
                            " AND datname = current_database()").fetchone()[0]:
            time.sleep(0.05)
        killed = watch.execute("SELECT id, status FROM etl_runs ORDER BY id DESC LIMIT 1").fetchone()
    assert killed[1] == "running"                       # nobody lived to say otherwise
    assert checksum(etl_url, "schools") == before       # exactly as before, row for row
    assert checksum(etl_url, "etl_rejects") == history_before
    with psycopg.connect(etl_url) as conn:
        assert conn.execute("SELECT count(*) FROM history.schools").fetchone()[0] == len(SCHOOLS)

    rerun = iocgis(etl_url, "load", "schools", big)
    assert f"inserted {n}" in rerun.stdout and "rejected 0" in rerun.stdout
    assert checksum(etl_url, "schools")[0] == len(SCHOOLS) + n
    with psycopg.connect(etl_url) as conn:
        status = conn.execute("SELECT status, message FROM etl_runs WHERE id = %s", (killed[0],)).fetchone()
    assert status[0] == "failed" and "interrupted" in status[1]


SOURCE_YML = """
name: sgd_truong
layer: schools
kind: {kind}
path: {path}
pattern: "*.gpkg"
key: [code]
fields: {{code: MA, name: TEN, level: CAP}}
defaults: {{ownership: public}}
codes: {{level: {{MN: preschool, TH: primary}}}}
schedule: every 1h
tag: sgd
"""


def sgd_file(path, rows) -> None:
    gpd.GeoDataFrame({"MA": [r[0] for r in rows], "TEN": [r[1] for r in rows], "CAP": [r[2] for r in rows]},
                     geometry=[shapely.Point(103.97, 22.48)] * len(rows), crs=4326).to_file(path, driver="GPKG")


def test_declared_source_run_and_scheduler_once(etl_url, tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    sgd_file(tmp_path / "sgd.gpkg", [("MN-1", "Mầm non Hoa Mai", "MN"), ("TH-1", "Tiểu học Lê Lợi", "TH")])
    (sources / "sgd_truong.yml").write_text(SOURCE_YML.format(kind="file", path="../sgd.gpkg"))
    out = iocgis(etl_url, "run", "sgd_truong", "--sources", sources).stdout
    assert "inserted 2" in out
    # Ran a moment ago and due every hour: the scheduler's round leaves it alone.
    once = iocgis(etl_url, "schedule", "--once", "--sources", sources).stdout
    assert "sgd_truong" not in once and "stopped" in once
    with psycopg.connect(etl_url) as conn:
        conn.execute("UPDATE etl_runs SET started_at = started_at - interval '2 hours',"
                     " ended_at = ended_at - interval '2 hours'")
    once = iocgis(etl_url, "schedule", "--once", "--sources", sources).stdout
    assert "sgd_truong: unchanged" in once
    unknown = iocgis(etl_url, "run", "nope", "--sources", sources, check=False)
    assert unknown.returncode == 2 and "sgd_truong" in unknown.stderr


def test_drop_directory(etl_url, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "sgd_truong.yml").write_text(SOURCE_YML.format(kind="directory", path=drop))
    sgd_file(drop / "a.gpkg", [("MN-1", "Mầm non Hoa Mai", "MN")])
    dry = iocgis(etl_url, "run", "sgd_truong", "--sources", sources, "--dry-run").stdout
    assert "dry run" in dry and "inserted 1" in dry and (drop / "a.gpkg").exists()
    out = iocgis(etl_url, "run", "sgd_truong", "--sources", sources).stdout
    assert "inserted 1" in out
    assert (drop / "processed" / "a.gpkg").exists() and not (drop / "a.gpkg").exists()
    assert "no files waiting" in iocgis(etl_url, "run", "sgd_truong", "--sources", sources).stdout


def test_scheduler_stops_cleanly_on_sigterm(etl_url, tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    sgd_file(tmp_path / "sgd.gpkg", [("TH-1", "Tiểu học Lê Lợi", "TH")])
    (sources / "sgd_truong.yml").write_text(SOURCE_YML.format(kind="file", path="../sgd.gpkg"))
    env = {**os.environ, "DATABASE_URL": etl_url}
    proc = subprocess.Popen([*CLI, "schedule", "--sources", str(sources), "--poll", "600"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        with psycopg.connect(etl_url, autocommit=True) as conn:
            while not conn.execute("SELECT count(*) FROM etl_runs WHERE status = 'succeeded'").fetchone()[0]:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        time.sleep(0.3)              # now asleep until the next round, ten minutes away
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 10
    assert "SIGTERM" in out and "stopped" in out and "inserted 1" in out
