"""Paging of OGC API Features items: keyset cursors in next/prev links, the position index behind
deep offsets, and the layer as it was on a date (`asOf`, from history.<table>).

The provider is exercised in process on a database of its own (rows are inserted, changed and
deleted), then the same features are checked against the running server."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message

import psycopg
import pytest
from psycopg import sql

from gis_core import features_sql as fsql
from gis_core import ogc_config, ogc_provider, paging
from gis_core.errors import InvalidParameter
from gis_core.ogc_provider import FastPostGISProvider
from gis_core.registry import Registry
from gis_core.settings import Settings

REGISTRY = Registry.load(Settings().layers_dir)
ITEMS_URL = "http://127.0.0.1/ogc/collections/schools/items"
SCHOOLS = 3_500   # three and a half strides of the position index


# -- without a database --------------------------------------------------------------------------


def test_cursor_round_trip_and_tampering():
    cursor = paging.Cursor("-students", ("12", "2041"))
    text = cursor.encode()
    assert paging.Cursor.decode(text) == cursor
    assert paging.Cursor.decode(paging.Cursor("", (None, "7"), backward=True).encode()).backward
    flipped = text[:10] + ("A" if text[10] != "A" else "B") + text[11:]
    for bad in (flipped, text[:-3], text + "AAAA", "", "not a cursor!", "A" * 5000, "eyJhIjoxfQ"):
        with pytest.raises(InvalidParameter) as caught:
            paging.Cursor.decode(bad)
        assert "cursor không hợp lệ" in caught.value.message_vi and "invalid cursor" in caught.value.message_en
    with pytest.raises(InvalidParameter):
        cursor.check_sort("students")


def test_keyset_clause_is_a_row_comparison_when_it_can_be():
    id_key = fsql.SortKey(fsql.Column("id", "bigint", not_null=True))
    clause, params = fsql.keyset_clause([id_key], ["41"])
    assert clause.as_string(None) == '("id") > (CAST(%(key_0)s AS bigint))' and params == {"key_0": "41"}
    assert "<" in fsql.keyset_clause([id_key], ["41"], backward=True)[0].as_string(None)
    nullable = fsql.SortKey(fsql.Column("students", "integer"), descending=True)
    text = fsql.keyset_clause([nullable, id_key], ["12", "41"])[0].as_string(None)
    assert text == ('((("students" < CAST(%(key_0)s AS integer) OR "students" IS NULL)) OR '
                    '("students" = CAST(%(key_0)s AS integer) AND "id" > CAST(%(key_1)s AS bigint)))')
    assert fsql.keyset_clause([nullable, id_key], [None, "41"])[0].as_string(None) == \
        '(("students" IS NULL AND "id" > CAST(%(key_1)s AS bigint)))'
    # A key that cannot be null, against the id's direction: the ORs, behind a range on that key.
    latest = fsql.SortKey(fsql.Column("reported_at", "timestamp with time zone", not_null=True), descending=True)
    assert fsql.keyset_clause([latest, id_key], ["2026-01-01 00:00:00+07", "41"])[0].as_string(None) == (
        '"reported_at" <= CAST(%(key_0)s AS timestamp with time zone) AND '
        '(("reported_at" < CAST(%(key_0)s AS timestamp with time zone)) OR '
        '("reported_at" = CAST(%(key_0)s AS timestamp with time zone) AND "id" > CAST(%(key_1)s AS bigint)))')
    with pytest.raises(InvalidParameter):
        fsql.keyset_clause([nullable, id_key], ["41"])


def test_as_of_dates():
    end_of_day = paging.parse_as_of("2026-01-01")
    assert end_of_day == dt.datetime(2026, 1, 1, 23, 59, 59, 999999, tzinfo=paging.VIETNAM)
    assert paging.parse_as_of("2026-01-01T08:00:00Z") == dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC)
    assert paging.parse_as_of("2026-01-01T08:00").tzinfo == paging.VIETNAM
    for bad in ("yesterday", "2026-13-01", "2026-02-30", "9999-12-31", "", "2026-01-01/2026-02-01"):
        with pytest.raises(InvalidParameter):
            paging.parse_as_of(bad)


# -- the provider on a database of its own --------------------------------------------------------


@pytest.fixture
def schools(db_url):
    """SCHOOLS schools with few distinct levels and student counts (ties and nulls to sort through)."""
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO admin_units (code, level, kind, name, full_name, name_unaccent, valid_from,"
                     " valid_to, source) VALUES ('10', 'province', 'Tỉnh', 'Lào Cai', 'Tỉnh Lào Cai', 'lao cai',"
                     " '2025-07-01', '2025-07-02', 'test')")
        insert_schools(conn, 1, SCHOOLS)
    definition = ogc_config.build(REGISTRY)["resources"]["schools"]["providers"][0]
    return db_url, {**definition, "data": db_url}


def insert_schools(conn, first: int, last: int) -> None:
    conn.execute("""
        INSERT INTO schools (code, name, name_unaccent, level, ownership, students, commune_code, source, geom)
        SELECT 'T' || n, 'Trường ' || n, 'truong ' || n,
               (ARRAY['preschool', 'primary', 'lower_secondary'])[1 + mod(n, 3)], 'public',
               CASE WHEN mod(n, 7) = 0 THEN NULL ELSE mod(n * 37, 50) END, '10', 'test',
               ST_SetSRID(ST_MakePoint(103.6 + mod(n, 100) * 0.01, 21.5 + (n / 100) * 0.01), 4326)
        FROM generate_series(%s::int, %s::int) n""", (first, last))


def fetch(provider: FastPostGISProvider, query: dict, **kwargs) -> dict:
    """One items request as pygeoapi makes it, with the request published as webmap/ogc.py does."""
    args = [(k, str(v)) for k, v in query.items()]
    with paging.items_request(ITEMS_URL, args):
        return provider.query(offset=int(query.get("offset", 0)), limit=int(query.get("limit", 10)), **kwargs)


def link(page: dict, rel: str) -> dict | None:
    found = [dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(x["href"]).query)) for x in page["links"]
             if x["rel"] == rel]
    assert len(found) <= 1, page["links"]
    return found[0] if found else None


def ids_in_order(url: str, order: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(sql.SQL("SELECT id FROM schools ORDER BY " + order))]


SORTS = [
    ([], "id"),
    ([{"property": "students", "order": "-"}], "students DESC NULLS LAST, id"),
    ([{"property": "level", "order": "+"}, {"property": "students", "order": "+"}],
     "level, students NULLS LAST, id"),
    ([{"property": "level", "order": "-"}], "level DESC, id"),
]


@pytest.mark.parametrize("sortby, order", SORTS, ids=["id", "-students", "level,students", "-level"])
def test_next_and_prev_cursors_walk_the_whole_layer(schools, sortby, order):
    url, definition = schools
    provider = FastPostGISProvider(definition)
    expected = ids_in_order(url, order)
    sort = ",".join(("-" if s["order"] == "-" else "") + s["property"] for s in sortby)
    query = {"f": "json", "limit": 400, **({"sortby": sort} if sort else {})}
    pages, page = [], fetch(provider, query, sortby=sortby)
    assert link(page, "prev") is None
    while True:
        pages.append([f["id"] for f in page["features"]])
        following = link(page, "next")
        if following is None:
            break
        assert "offset" not in following and following.get("sortby") == query.get("sortby")
        page = fetch(provider, following, sortby=sortby)
        assert "numberMatched" not in page   # pygeoapi would read it as offset 0 and add a link
    assert [i for p in pages for i in p] == expected
    assert [len(p) for p in pages] == [400] * (SCHOOLS // 400) + [SCHOOLS % 400]
    # ... and back from the last page to the first, the same pages the other way round.
    back = [[f["id"] for f in page["features"]]]
    while (previous := link(page, "prev")) is not None:
        page = fetch(provider, previous, sortby=sortby)
        back.append([f["id"] for f in page["features"]])
    assert back == pages[::-1]
    # Plain offsets give the same rows as the cursors.
    for n, chunk in enumerate(pages):
        assert [f["id"] for f in fetch(provider, {**query, "offset": n * 400}, sortby=sortby)["features"]] == chunk


def test_offset_pages_link_next_by_cursor_and_prev_by_offset(schools):
    _, definition = schools
    provider = FastPostGISProvider(definition)
    page = fetch(provider, {"f": "json", "limit": 100, "offset": 250})
    assert link(page, "prev") == {"f": "json", "limit": "100", "offset": "150"}
    after = fetch(provider, link(page, "next"))
    assert after["features"][0]["id"] == page["features"][-1]["id"] + 1
    last = fetch(provider, {"f": "json", "limit": 100, "offset": SCHOOLS - 50})
    assert link(last, "next") is None and len(last["features"]) == 50   # pygeoapi adds the offset prev


def test_bad_cursors_are_refused(schools):
    from pygeoapi.provider.base import ProviderInvalidQueryError

    _, definition = schools
    provider = FastPostGISProvider(definition)
    good = link(fetch(provider, {"limit": 10}), "next")["cursor"]
    typed_wrong = paging.Cursor("", ("not a number",)).encode()
    for query, sortby in (({"cursor": good[:-2]}, []), ({"cursor": good, "offset": 20}, []),
                          ({"cursor": good, "sortby": "-students"}, [{"property": "students", "order": "-"}]),
                          ({"cursor": typed_wrong}, [])):
        with pytest.raises(ProviderInvalidQueryError) as caught:
            fetch(provider, {"limit": 10, **query}, sortby=sortby)
        assert " / " in caught.value.message, caught.value.message


def offset_ids(url: str, offset: int, limit: int) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM schools ORDER BY id LIMIT %s OFFSET %s", (limit, offset))]


def test_deep_offsets_follow_data_changes(schools):
    """The position index gives exactly OFFSET's rows, also right after rows are added or removed."""
    url, definition = schools
    provider = FastPostGISProvider(definition)
    key = (url, "schools")

    def check(offsets):
        for offset in offsets:
            got = [f["id"] for f in fetch(provider, {"limit": 25, "offset": offset})["features"]]
            assert got == offset_ids(url, offset, 25), offset

    def version() -> int:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT version FROM layer_versions WHERE table_name = 'schools'").fetchone()[0]

    offsets = [1, 999, 1000, 1001, 1990, 2500, 3474, 3499, 3500, 9000]
    check(offsets)
    assert ogc_provider._positions[key].version == version()   # the index was built and used
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM schools WHERE id BETWEEN 500 AND 520 OR id IN (1000, 1001, 2999)")
    check(offsets)
    with psycopg.connect(url) as conn:
        insert_schools(conn, SCHOOLS + 1, SCHOOLS + 600)
        conn.execute("DELETE FROM schools WHERE id < 40")
    check([*offsets, 3900, 4000])
    assert ogc_provider._positions[key].version == version() > 1


def test_as_of_reads_the_layer_as_it_was(schools):
    from pygeoapi.provider.base import ProviderItemNotFoundError

    url, definition = schools
    with psycopg.connect(url) as conn:
        # The schools existed from ten days ago; today one is renamed and moved, one is closed.
        conn.execute("UPDATE history.schools SET version_from = version_from - interval '10 days'")
        conn.execute("UPDATE schools SET name = 'Trường mới', students = 999,"
                     " geom = ST_SetSRID(ST_MakePoint(104.9, 22.8), 4326) WHERE id = 5")
        conn.execute("DELETE FROM schools WHERE id = 6")
    provider = FastPostGISProvider(definition)
    five_days_ago = (dt.date.today() - dt.timedelta(days=5)).isoformat()
    then = fetch(provider, {"limit": 10, "asOf": five_days_ago})
    now = fetch(provider, {"limit": 10})
    by_id = {f["id"]: f for f in then["features"]}
    assert [f["id"] for f in then["features"]] == list(range(1, 11))
    assert by_id[5]["properties"]["name"] == "Trường 5" and by_id[5]["properties"]["students"] != 999
    assert set(by_id[5]["properties"]) == {f["id"]: f for f in now["features"]}[5]["properties"].keys()
    assert 6 not in {f["id"] for f in now["features"]}
    assert then["numberMatched"] == SCHOOLS and now["numberMatched"] == SCHOOLS - 1
    # Filters and bbox apply to the past state: school 5 was not yet at 104.9, 22.8.
    from pygeofilter.parsers.cql2_text import parse

    renamed = parse("name = 'Trường mới'")
    assert fetch(provider, {"limit": 10, "asOf": five_days_ago}, filterq=renamed)["features"] == []
    assert [f["id"] for f in fetch(provider, {"limit": 10}, filterq=renamed)["features"]] == [5]
    assert fetch(provider, {"limit": 10, "asOf": five_days_ago}, bbox=[104.85, 22.75, 104.95, 22.85])["features"] == []
    # One feature as it was, and one that is gone today but was there then.
    with paging.items_request(ITEMS_URL, [("asOf", five_days_ago)]):
        assert provider.get(5)["properties"]["name"] == "Trường 5"
        assert provider.get(6)["id"] == 6
    assert provider.get(5)["properties"]["name"] == "Trường mới"
    with pytest.raises(ProviderItemNotFoundError):
        provider.get(6)
    # Before the schools existed there is nothing; a cursor pages through the past state too.
    assert fetch(provider, {"limit": 10, "asOf": "2020-01-01"})["numberMatched"] == 0
    second = fetch(provider, link(then, "next"))
    assert [f["id"] for f in second["features"]] == list(range(11, 21))


# -- against the server ---------------------------------------------------------------------------


def get(server: str, query: str) -> tuple[int, Message, dict]:
    try:
        with urllib.request.urlopen(f"{server}/ogc/collections/{query}", timeout=60) as response:
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.load(err)


def test_server_pages_by_cursor_in_a_projected_crs(server, demo_url):
    crs = "http://www.opengis.net/def/crs/EPSG/0/9208"
    status, _, first = get(server, f"incidents/items?f=json&limit=50&crs={urllib.parse.quote(crs)}")
    assert status == 200 and not [x for x in first["links"] if x["rel"] == "prev"]
    href = next(x["href"] for x in first["links"] if x["rel"] == "next")
    assert "cursor=" in href and "offset=" not in href and href.startswith(server)
    status, headers, second = get(server, href.split("/ogc/collections/", 1)[1])
    assert status == 200 and headers["Content-Crs"] == f"<{crs}>"
    x, y = second["features"][0]["geometry"]["coordinates"]
    assert 250_000 < x < 600_000 and 2_300_000 < y < 2_550_000
    with psycopg.connect(demo_url) as conn:
        expected = [r[0] for r in conn.execute("SELECT id FROM incidents ORDER BY id LIMIT 50 OFFSET 50")]
    assert [f["id"] for f in second["features"]] == expected
    _, _, by_offset = get(server, f"incidents/items?f=json&limit=50&offset=50&crs={urllib.parse.quote(crs)}")
    assert by_offset["features"] == second["features"]
    # A tampered cursor is the client's mistake, said in Vietnamese then English.
    status, _, body = get(server, href.split("/ogc/collections/", 1)[1][:-4] + "AAAA")
    assert status == 400 and "cursor không hợp lệ" in body["description"] and "invalid cursor" in body["description"]


def test_server_as_of(server, demo_url):
    status, _, body = get(server, "schools/items?f=json&limit=5&asOf=2000-01-01")
    assert status == 200 and body["features"] == [] and body["numberMatched"] == 0
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    _, _, now = get(server, "schools/items?f=json&limit=5&level=primary")
    _, _, then = get(server, f"schools/items?f=json&limit=5&level=primary&asOf={tomorrow}")
    assert then["features"] and then["features"] == now["features"]
    first = then["features"][0]
    status, _, one = get(server, f"schools/items/{first['id']}?f=json&asOf={tomorrow}")
    assert status == 200 and one["properties"] == first["properties"]
    for query in ("schools/items?f=json&asOf=2026-02-30", "schools/items?f=json&asOf=tomorrow",
                  "communes/items?f=json&asOf=2026-01-01", f"schools/items/{first['id']}?f=json&asOf=x"):
        status, _, body = get(server, query)
        assert status == 400 and " / " in body["description"], (query, body)


def test_openapi_declares_cursor_and_as_of(server):
    with urllib.request.urlopen(f"{server}/ogc/openapi?f=json", timeout=60) as response:
        document = json.load(response)
    for name in ("cursor", "asOf"):
        assert document["components"]["parameters"][name]["in"] == "query"
    items = document["paths"]["/collections/incidents/items"]["get"]["parameters"]
    assert {"$ref": "#/components/parameters/asOf"} in items and {"$ref": "#/components/parameters/cursor"} in items
    one = document["paths"]["/collections/incidents/items/{featureId}"]["get"]["parameters"]
    assert {"$ref": "#/components/parameters/asOf"} in one


def test_views_are_estimated_like_tables(demo_url):
    """numberMatched is exact only below CHEAP_COUNT_ROWS estimated rows; a view (public_reports over
    a million incidents) must be estimated by the planner, not read as 0 rows from pg_class."""
    catalog = ogc_provider.catalog_for(demo_url, "public_reports", "id", "geom", ["status"])
    with psycopg.connect(demo_url) as conn:
        count = conn.execute("SELECT count(*) FROM public_reports").fetchone()[0]
    assert count > 0 and count / 2 <= catalog.estimated_rows <= count * 2, (count, catalog.estimated_rows)
