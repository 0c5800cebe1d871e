"""A SQL-injection and junk-input corpus against the running server: every query parameter of the
OGC API items endpoint and of our JSON endpoints. Each hostile value gets a 400 (or a 404 where the
thing named does not exist; free-text values that are only searched for may give a 200 that finds
nothing), never a 5xx and never a page of rows it should not select; the database is unchanged."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import psycopg
import pytest
from conftest import ensure_token
from psycopg import sql

INJECTIONS = [
    "'", '"', "1'--", "' OR '1'='1", "1 OR 1=1", "1; DROP TABLE schools; --", "'; DELETE FROM incidents; --",
    "pg_sleep(5)", "1 AND pg_sleep(5)=1", "' UNION SELECT usename FROM pg_user --", "$$; DROP TABLE schools; $$",
    "\x00", "a\x00b", "' || (SELECT current_user) || '", "1e309", "-1", "99999999999999999999", "NaN",
    "Infinity", "/**/", "\n", "\u202e", "%", "\\", "${jndi:ldap://x}", "A" * 5000,
]

EXTRA = {
    "filter": ["name = 'x'; DROP TABLE schools", "students > 1 OR pg_sleep(5) = 1",
               "\"name); DROP TABLE schools; --\" = 'a'", "applicant_name = 'a'", "reporter_contact IS NOT NULL",
               "INTERSECTS(geom, POLYGON((0 0, 1 1, 0 0)))", "students > 99999999999999999999999",
               "name LIKE '%\x00%'", "students IN (1, 'a')", "students BETWEEN 'a' AND 'b'", "code = 1/0",
               "S_INTERSECTS(geom, POINT(1e999 0))", "name = 'a' AND (", "pg_sleep(1) = 1"],
    "sortby": ["name;DROP TABLE schools", "-name,pg_sleep(1)", "(SELECT 1)", "+", "-", "applicant_name",
               "reporter_contact", "name DESC; --"],
    "properties": ["name,(SELECT usename FROM pg_user)", "*", "name;--", "applicant_name", "reporter_name", ","],
    "bbox": ["1,2,3", "a,b,c,d", "1,2,3,4);DROP TABLE x;--", "NaN,NaN,NaN,NaN", "1e999,0,1,1", "3,3,1,1",
             "1,2,3,4,5,6,7", "inf,-inf,inf,inf", "1,2,3,4,5"],
    "datetime": ["2020-01-01'; DROP", "../..", "2020-13-45", "9999999-01-01", "2020-01-01/1999-01-01", "0000-00-00",
                 "2020-01-01T25:61:61Z", "-infinity", "/", "2020-01-01/..\x00"],
    "limit": ["abc", "1e9", "10;DROP"],   # a too large whole number is cut to the server's maximum (checked below)
    "offset": ["abc", "1e20", "-5", "9223372036854775808"],
    "crs": ["http://www.opengis.net/def/crs/EPSG/0/999999", "javascript:alert(1)", "EPSG:4326'; DROP"],
    "bbox-crs": ["http://www.opengis.net/def/crs/EPSG/0/999999", "javascript:alert(1)"],
    "cursor": ["WzEsIm4iLCIiLFsiMSJdXQ", "AAAAAAAAWzEsIm4iLCIiLFsiMSJdXQ", "=", "..", "eyJ9"],
    "asOf": ["2026-02-30", "2026-01-01'; DROP", "9999-12-31", "2026-01-01/2026-02-01", "0001-01-01T99:00"],
}

# Where a hostile value may also be harmless: a value compared with equality (name=...), or an
# option pygeoapi ignores when it does not know it. A 200 there must find nothing it should not.
LENIENT = {"name", "skipGeometry", "filter-lang", "f", "lang"}

COLLECTIONS = ["schools", "incidents", "building_permits"]


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def fingerprint(url: str) -> dict:
    """Counts and checksums of the tables no GET may change, and the list of tables itself. (cameras is
    left out: any request may run the sweep that marks silent cameras offline.)"""
    out: dict = {}
    with psycopg.connect(url) as conn:
        for table, key in (("admin_units", "code"), ("schools", "id"), ("incidents", "id"),
                           ("building_permits", "id"), ("landuse_zones", "id"), ("clinics", "id")):
            out[table] = conn.execute(sql.SQL(
                "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY {}))"
                " FROM {} t").format(sql.Identifier("t", key), sql.Identifier(table))).fetchone()
        out["tables"] = conn.execute("SELECT array_agg(schemaname || '.' || tablename ORDER BY 1) FROM pg_tables"
                                     " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").fetchone()
        out["roles"] = conn.execute("SELECT array_agg(rolname ORDER BY 1) FROM pg_roles").fetchone()
    return out


@pytest.fixture(scope="module")
def before(demo_url):
    return fingerprint(demo_url)


def _ogc_cases():
    for param in ("filter", "sortby", "properties", "bbox", "datetime", "limit", "offset", "crs", "bbox-crs",
                  "cursor", "asOf", "name", "skipGeometry", "filter-lang", "f", "lang"):
        for value in INJECTIONS + EXTRA.get(param, []):
            yield param, value


def test_ogc_items_refuse_hostile_values(server, demo_url, before):
    problems = []
    for collection in COLLECTIONS:
        for param, value in _ogc_cases():
            if param == "name" and collection != "schools":
                continue   # pygeoapi ignores parameters that name no field of the collection
            query = {param: value} if param == "f" else {param: value, "f": "json"}
            status, body = get(f"{server}/ogc/collections/{collection}/items?{urllib.parse.urlencode(query)}")
            where = f"{collection} {param}={value[:40]!r}"
            if status >= 500:
                problems.append(f"{where}: {status} {body[:160]!r}")
            elif status == 200 and param not in LENIENT and not (param == "limit" and value.isdigit()):
                problems.append(f"{where}: accepted (200)")
            elif status == 200 and param == "name" and json.loads(body)["numberReturned"]:
                problems.append(f"{where}: matched rows")
            elif status not in (200, 400, 404):
                problems.append(f"{where}: {status}")
            if status == 400 and b"Traceback" in body:
                problems.append(f"{where}: traceback in body")
    assert not problems, "\n".join(problems[:80]) + f"\n({len(problems)} in all)"


def test_ogc_limits_and_reflected_markup(server):
    for value in ("99999999999999999999", "10000000000"):
        status, body = get(f"{server}/ogc/collections/schools/items?f=json&limit={value}")
        assert status == 200 and json.loads(body)["numberReturned"] <= 10_000
    # A field name echoed in an error message comes back escaped, never as markup.
    attack = urllib.parse.quote('"<script>alert(1)</script>" = 1')
    status, body = get(f"{server}/ogc/collections/schools/items?f=html&filter={attack}")
    assert status == 400 and b"<script>alert(1)" not in body


def test_ogc_path_segments(server):
    problems = []
    for value in INJECTIONS[:12] + ["..", "../../etc/passwd", "schools/../incidents"]:
        segment = urllib.parse.quote(value, safe="")
        for path in (f"/ogc/collections/{segment}/items", f"/ogc/collections/schools/items/{segment}",
                     f"/ogc/collections/{segment}", f"/ogc/collections/schools/tiles/{segment}/1/1/1",
                     f"/ogc/collections/{segment}/queryables"):
            status, body = get(f"{server}{path}?f=json")
            if status not in (400, 404):
                problems.append(f"{path}: {status} {body[:120]!r}")
    assert not problems, "\n".join(problems)


JSON_ENDPOINTS = [
    ("/api/places", "q", {200, 400}),     # a search text: found or not; blank or too long is a 400
    ("/api/places", "limit", {400}),
    ("/api/indicators/poverty_rate/choropleth", "period", {400, 404}),
    ("/api/indicators/poverty_rate/choropleth", "method", {400}),
    ("/api/indicators/poverty_rate/choropleth", "k", {400}),
    ("/api/indicators/poverty_rate/series", "unit", {404}),
    ("/api/layers/schools/clusters", "bbox", {400}),
    ("/api/layers/schools/clusters", "zoom", {400}),
    ("/api/layers/incidents/clusters", "days", {400}),
    ("/api/incidents", "before", {400}),
    ("/api/incidents", "limit", {400}),
    ("/api/incidents", "status", {200, 400}),   # a filter value: matches nothing or is refused
    ("/api/incidents", "category", {200, 400}),
    ("/api/incidents", "commune", {200, 400}),
    ("/api/alerts", "f", {200}),
]

JSON_PATHS = ["/api/communes/{}", "/api/track/{}", "/api/incidents/{}", "/api/indicators/{}/series",
              "/api/indicators/{}/choropleth", "/api/layers/{}/clusters", "/track/{}", "/incidents/{}"]


def test_json_endpoints_refuse_hostile_values(server, demo_url, before):
    # As an administrator (an API token), so that each value reaches the code that checks it.
    token = ensure_token(demo_url, "admin")
    problems = []
    for path, param, allowed in JSON_ENDPOINTS:
        for value in INJECTIONS:
            if param in ("limit", "k", "zoom", "days", "before") and value.lstrip("-").isdigit() and len(value) < 5:
                continue   # -1 is a plain out-of-range number, covered below
            status, body = get(f"{server}{path}?{urllib.parse.urlencode({param: value})}", token)
            if status not in allowed | {400}:   # a 400 is always a fine answer to junk
                problems.append(f"{path} {param}={value[:40]!r}: {status} {body[:120]!r}")
            elif status == 200 and param in ("status", "category", "commune"):
                if json.loads(body)["incidents"]:
                    problems.append(f"{path} {param}={value[:40]!r}: matched rows")
            elif status == 200 and param == "q" and len(json.loads(body)) > 10:
                problems.append(f"{path} q={value[:40]!r}: more than the default limit")
    for template in JSON_PATHS:
        for value in INJECTIONS[:16]:
            url = server + template.format(urllib.parse.quote(value, safe=""))
            status, body = get(url, token)
            if status not in (400, 404):
                problems.append(f"{template} {value[:40]!r}: {status} {body[:120]!r}")
    assert not problems, "\n".join(problems[:80]) + f"\n({len(problems)} in all)"


def test_database_unchanged(server, demo_url, before):
    """Runs after the corpus (tests run in file order): nothing dropped, deleted or altered."""
    assert fingerprint(demo_url) == before
