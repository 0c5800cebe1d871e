"""Past states: a snapshot that drops a record retires it into history, and the layer can still be
shown as it was before; other sources' records are not touched by a snapshot."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import psycopg
import pytest
import shapely
from test_etl_files import copy_boundaries

from etl.history import layer_as_of, versions
from etl.pipeline import run_source
from etl.sources import Source
from gis_core.registry import Registry
from gis_core.settings import Settings

REGISTRY = Registry.load(Settings().layers_dir)


@pytest.fixture
def etl_url(db_url, demo_url):
    copy_boundaries(demo_url, db_url)
    return db_url


def schools_file(path, rows):
    gpd.GeoDataFrame([{k: v for k, v in r.items() if k != "xy"} for r in rows],
                     geometry=[shapely.Point(*r["xy"]) for r in rows], crs=4326).to_file(path, driver="GPKG")


ROWS = [
    {"code": "TH-1", "name": "Tiểu học Kim Tân", "level": "primary", "ownership": "public", "students": 300,
     "xy": (103.97, 22.48)},
    {"code": "TH-2", "name": "Tiểu học Cốc Lếu", "level": "primary", "ownership": "public", "students": 410,
     "xy": (103.965, 22.495)},
    {"code": "TH-3", "name": "Tiểu học Bắc Cường", "level": "primary", "ownership": "public", "students": 280,
     "xy": (103.99, 22.44)},
]


def clock(url) -> dt.datetime:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT clock_timestamp()").fetchone()[0]


def test_snapshot_retires_into_history_and_as_of_still_shows_it(etl_url, tmp_path):
    path = tmp_path / "sgd.gpkg"
    schools_file(path, ROWS)
    snapshot = Source.adhoc("schools", path, snapshot=True, tag="sgd")
    first = run_source(etl_url, REGISTRY, snapshot)
    assert first.inserted == 3
    # A school from another source: a snapshot of "sgd" must leave it alone.
    other = tmp_path / "other.gpkg"
    schools_file(other, [{**ROWS[0], "code": "TT-9", "name": "Trường tư thục Hoa Sen", "ownership": "private"}])
    assert run_source(etl_url, REGISTRY, Source.adhoc("schools", other, tag="private-register")).inserted == 1
    before = clock(etl_url)

    changed = [ROWS[0], {**ROWS[1], "students": 999}]       # TH-3 dropped, TH-2 changed
    schools_file(path, changed)
    second = run_source(etl_url, REGISTRY, snapshot)
    assert (second.inserted, second.updated, second.unchanged, second.retired) == (0, 1, 1, 1)
    after = clock(etl_url)

    with psycopg.connect(etl_url) as conn:
        assert [r[0] for r in conn.execute("SELECT code FROM schools ORDER BY code")] == ["TH-1", "TH-2", "TT-9"]
        run = conn.execute("SELECT n_retired, status FROM etl_runs WHERE id = %s", (second.run_id,)).fetchone()
        assert run == (1, "succeeded")
        then = layer_as_of(conn, REGISTRY["schools"], before)
        now = layer_as_of(conn, REGISTRY["schools"], after)
        by_code = {f["properties"]["code"]: f for f in then["features"]}
        assert set(by_code) == {"TH-1", "TH-2", "TH-3", "TT-9"}
        assert by_code["TH-2"]["properties"]["students"] == 410
        assert by_code["TH-3"]["geometry"]["coordinates"] == [103.99, 22.44]
        assert {f["properties"]["code"]: f["properties"]["students"] for f in now["features"]} == \
            {"TH-1": 300, "TH-2": 999, "TT-9": 300}
        # The retired school's versions: one, closed by the second run.
        th3 = next(f["id"] for f in then["features"] if f["properties"]["code"] == "TH-3")
        [(start, end, made_by)] = versions(conn, "schools", th3)
        assert made_by == first.run_id and before <= end <= after
        th2 = by_code["TH-2"]["id"]
        assert [v[2] for v in versions(conn, "schools", th2)] == [first.run_id, second.run_id]
        # A date means the end of that day (UTC+7): today shows the layer as it is now.
        today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date()
        assert len(layer_as_of(conn, REGISTRY["schools"], today)["features"]) == 3
        assert layer_as_of(conn, REGISTRY["schools"], dt.date(2000, 1, 1))["features"] == []


def test_edits_outside_the_etl_are_versioned_too(etl_url, tmp_path):
    path = tmp_path / "sgd.gpkg"
    schools_file(path, ROWS[:1])
    run_source(etl_url, REGISTRY, Source.adhoc("schools", path))
    with psycopg.connect(etl_url) as conn:
        row_id = conn.execute("SELECT id FROM schools").fetchone()[0]
        conn.execute("UPDATE schools SET students = 301")
        conn.commit()
        conn.execute("UPDATE schools SET students = 301")       # same value: no new version
        conn.commit()
        conn.execute("DELETE FROM schools")
        conn.commit()
        history = versions(conn, "schools", row_id)
    assert len(history) == 2
    assert history[0][2] is not None and history[1][2] is None    # the second made outside the ETL
    assert all(end is not None for _, end, _ in history)          # deleted: no open version


def test_declared_sources_in_the_repo_parse_and_name_real_layers():
    from etl.sources import SOURCES_DIR, load_sources

    sources = load_sources(SOURCES_DIR)
    assert sources
    for source in sources.values():
        assert REGISTRY[source.layer].table
