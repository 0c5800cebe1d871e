"""Typed models mirror the migrated schema; place search ignores diacritics."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from sqlalchemy import create_engine

from gis_core.db import sqlalchemy_url
from gis_core.errors import InvalidParameter
from gis_core.models import Base
from gis_core.places import search_places


@pytest.mark.parametrize("table", sorted(Base.metadata.tables), ids=str)
def test_model_matches_the_migrated_table(conn, table):
    model = Base.metadata.tables[table]
    rows = conn.execute(
        "SELECT column_name, is_nullable = 'YES' FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = %s", (table,)).fetchall()
    assert {c.name: c.nullable for c in model.columns} == dict(rows)


@pytest.fixture(scope="module")
def engine(demo_url):
    engine = create_engine(sqlalchemy_url(demo_url))
    yield engine
    engine.dispose()


@pytest.mark.parametrize("typed, expected", [
    ("lao cai", "Lào Cai"), ("Lào Cai", "Lào Cai"), ("sa pa", "Sa Pa"), ("bat xat", "Bát Xát"),
    ("  BAT   XAT ", "Bát Xát"), ("dong cuong", "Đông Cuông"), ("mu cang chai", "Mù Cang Chải"),
])
def test_search_without_diacritics_finds_the_unit_first(engine, typed, expected):
    found = search_places(engine, typed)
    assert found and found[0].name == expected, [p.name for p in found]
    west, south, east, north = found[0].bbox
    assert 103 < west < east < 106 and 21 < south < north < 23.5


def test_search_finds_the_province_and_escapes_wildcards(engine):
    assert any(p.level == "province" for p in search_places(engine, "lao cai"))
    assert search_places(engine, "%") == []
    assert search_places(engine, "_") == []


@pytest.mark.parametrize("bad", ["", "   ", "x" * 101])
def test_bad_search_text_is_refused(engine, bad):
    with pytest.raises(InvalidParameter):
        search_places(engine, bad)


def test_places_endpoint(server):
    with urllib.request.urlopen(f"{server}/api/places?q=sa%20pa") as response:
        body = json.load(response)
    assert body[0]["name"] == "Sa Pa" and body[0]["full_name"].endswith("Sa Pa")
    for query in ("q=", "q=sa&limit=abc", "q=sa&limit=0"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{server}/api/places?{query}")
        assert err.value.code == 400
        message = json.load(err.value)["description"]
        assert " / " in message and "Traceback" not in message
