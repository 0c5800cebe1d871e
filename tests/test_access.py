"""Access against the real server: each role may do what gis_core/auth/rules.py and layers/*.yml
say and gets 401/403 for the rest, across pages, JSON and the OGC API; restricted fields never
reach a role that may not see them (HTML, GeoJSON, CSV, item by id, queryables, filter/sortby);
OGC API Features transactions with tokens, each audited with the token as actor; login, logout,
CSRF, session rotation and throttling."""

from __future__ import annotations

import json
import re

import psycopg
import pytest
import requests
from conftest import PASSWORD, ensure_token, ensure_user, form_csrf, log_in

from gis_core.auth import rules
from gis_core.registry import Registry
from gis_core.settings import Settings

REGISTRY = Registry.load(Settings().layers_dir)
ROLES = rules.ROLES

# One page (GET) of each guarded area, as HTML and as JSON.
AREA_PAGES = {
    "permits": ["/permits", "/permits/api/search?q=GP"],
    "incidents": ["/incidents", "/api/incidents?limit=5"],
    "admin_etl": ["/admin/etl"],
    "admin_audit": ["/admin/audit"],
}

# Each restricted field, with its layer, and a value known to be in the demo data (read below).
RESTRICTED = [(layer.id, f.name) for layer in REGISTRY for f in layer.restricted_fields]


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def sessions(server, demo_url) -> dict[str, requests.Session]:
    return {role: log_in(server, demo_url, role) for role in ROLES}


@pytest.fixture(scope="module")
def tokens(demo_url) -> dict[str, str]:
    return {role: ensure_token(demo_url, role) for role in ROLES}


@pytest.fixture(scope="module")
def secrets_in_data(demo_url) -> dict[tuple[str, str], list[str]]:
    """For each restricted field, a few of its real values (what must never leak)."""
    found = {}
    with psycopg.connect(demo_url) as conn:
        for layer_id, name in RESTRICTED:
            layer = REGISTRY[layer_id]
            rows = conn.execute(
                psycopg.sql.SQL("SELECT {f}::text FROM {t} WHERE {f} IS NOT NULL AND length({f}::text) > 5"
                                " ORDER BY {id} LIMIT 3").format(
                    f=psycopg.sql.Identifier(name), t=psycopg.sql.Identifier(layer.table),
                    id=psycopg.sql.Identifier(layer.id_field))).fetchall()
            assert rows, f"the demo has no {layer_id}.{name} to test with"
            found[layer_id, name] = [r[0] for r in rows]
    return found


# -- pages and JSON: the role matrix -------------------------------------------------------------


@pytest.mark.parametrize("area", list(AREA_PAGES))
def test_anonymous_gets_401_json_or_the_login_page(server, area):
    for path in AREA_PAGES[area]:
        r = requests.get(server + path, allow_redirects=False, timeout=30,
                         headers={"Accept": "application/json" if "api" in path else "text/html"})
        if "api" in path:
            assert r.status_code == 401 and r.json()["code"] == "Unauthorized", path
            assert "Cần đăng nhập" in r.json()["description"]
        else:
            assert r.status_code == 303 and r.headers["Location"].startswith("/login?next="), path


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_the_areas_it_may_and_403_elsewhere(server, sessions, tokens, role):
    for area, paths in AREA_PAGES.items():
        allowed = rules.may_use(role, area)
        for path in paths:
            accept = {"Accept": "application/json" if "api" in path else "text/html"}
            by_session = sessions[role].get(server + path, headers=accept, allow_redirects=False, timeout=60)
            by_token = requests.get(server + path, headers={**accept, **auth(tokens[role])}, allow_redirects=False,
                                    timeout=60)
            for r in (by_session, by_token):
                assert r.status_code == (200 if allowed else 403), (role, path, r.status_code, r.text[:300])
            if not allowed and "api" not in path:
                assert "Lỗi 403" in by_session.text and by_session.text.index("Lỗi") < by_session.text.index("Error")


def test_a_bad_token_is_401_never_anonymous(server):
    for path in ("/api/incidents", "/ogc/collections/schools/items?limit=1"):
        r = requests.get(server + path, headers=auth("iocgis_" + "x" * 43), timeout=30)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer"), path


def test_revoked_and_expired_tokens_are_refused(server, demo_url):
    from gis_core.auth.accounts import create_token, revoke_token

    with psycopg.connect(demo_url) as conn:
        revoked = create_token(conn, "revoked-token", "admin", days=1)
        expired = create_token(conn, "expired-token", "admin", days=1)
        conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'expired-token'")
    assert requests.get(f"{server}/api/incidents", headers=auth(revoked), timeout=30).status_code == 200
    with psycopg.connect(demo_url) as conn:
        revoke_token(conn, "revoked-token")
    for secret in (revoked, expired):
        assert requests.get(f"{server}/api/incidents", headers=auth(secret), timeout=30).status_code == 401


def test_open_faces_stay_open(server):
    for path in ("/", "/wall", "/ogc/collections?f=json", "/ogc/collections/schools/items?limit=1",
                 "/api/report-categories"):
        assert requests.get(server + path, timeout=60).status_code == 200, path


# -- login, logout, CSRF, throttling ------------------------------------------------------------


def test_login_page_is_vietnamese_first_and_sets_a_safe_cookie(server):
    http = requests.Session()
    r = http.get(f"{server}/login", timeout=30)
    assert r.status_code == 200 and r.text.index("Đăng nhập") < r.text.index("Log in")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "iocgis_session=" in cookie


def test_login_rotates_the_session_and_logout_ends_it(server, demo_url):
    name = ensure_user(demo_url, "operator")
    http = requests.Session()
    before_csrf = form_csrf(http.get(f"{server}/login", timeout=30).text)
    before_cookie = http.cookies["iocgis_session"]
    r = http.post(f"{server}/login", data={"csrf_token": before_csrf, "name": name, "password": PASSWORD,
                                           "next": "/incidents"}, allow_redirects=False, timeout=30)
    assert r.status_code == 303 and r.headers["Location"] == "/incidents"
    after_cookie = http.cookies["iocgis_session"]
    after_csrf = form_csrf(http.get(f"{server}/login", timeout=30).text)
    assert after_cookie != before_cookie and after_csrf != before_csrf
    assert http.get(f"{server}/incidents", timeout=30).status_code == 200

    # The old (pre-login) cookie is not a logged-in session.
    stale = requests.get(f"{server}/incidents", cookies={"iocgis_session": before_cookie}, allow_redirects=False,
                         headers={"Accept": "text/html"}, timeout=30)
    assert stale.status_code == 303

    # Logging out needs the token; then the very same cookie no longer opens the board.
    assert http.post(f"{server}/logout", data={}, allow_redirects=False, timeout=30).status_code == 403
    kept = dict(http.cookies)
    assert http.post(f"{server}/logout", data={"csrf_token": after_csrf}, allow_redirects=False,
                     timeout=30).status_code == 303
    replay = requests.get(f"{server}/api/incidents", cookies=kept, timeout=30)
    assert replay.status_code == 401


def test_open_redirects_are_refused(server, demo_url):
    name = ensure_user(demo_url, "viewer")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        http = requests.Session()
        csrf = form_csrf(http.get(f"{server}/login", timeout=30).text)
        r = http.post(f"{server}/login", data={"csrf_token": csrf, "name": name, "password": PASSWORD,
                                               "next": target}, allow_redirects=False, timeout=30)
        assert r.status_code == 303 and r.headers["Location"] == "/", target


def test_login_without_csrf_or_with_a_wrong_password_fails(server, demo_url):
    name = ensure_user(demo_url, "planner")
    http = requests.Session()
    assert http.post(f"{server}/login", data={"name": name, "password": PASSWORD}, timeout=30).status_code == 403
    csrf = form_csrf(http.get(f"{server}/login", timeout=30).text)
    r = http.post(f"{server}/login", data={"csrf_token": csrf, "name": name, "password": "sai mật khẩu rồi"},
                  timeout=30)
    assert r.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu" in r.text
    assert "iocgis_session" not in r.cookies or "sid" not in r.cookies.get("iocgis_session", "")


def test_password_guessing_is_throttled_per_name(server, demo_url):
    from gis_core.auth.accounts import MAX_FAILURES_PER_NAME, add_user

    with psycopg.connect(demo_url) as conn:
        add_user(conn, "throttle-me", "viewer", PASSWORD)
    http = requests.Session()
    csrf = form_csrf(http.get(f"{server}/login", timeout=30).text)
    statuses = [http.post(f"{server}/login", data={"csrf_token": csrf, "name": "throttle-me", "password": f"đoán {i}"},
                          timeout=30).status_code for i in range(MAX_FAILURES_PER_NAME + 1)]
    assert statuses == [401] * MAX_FAILURES_PER_NAME + [429]
    # Locked: even the right password waits out the window.
    right = http.post(f"{server}/login", data={"csrf_token": csrf, "name": "throttle-me", "password": PASSWORD},
                      allow_redirects=False, timeout=30)
    assert right.status_code == 429 and "Retry-After" in right.headers and "15 phút" in right.text


def test_a_form_post_with_the_session_needs_the_csrf_token(server, sessions, demo_url):
    code = _open_incident(demo_url)
    http = sessions["operator"]
    url = f"{server}/incidents/{code}/transition"
    assert http.post(url, data={"to": "assigned"}, allow_redirects=False, timeout=30).status_code == 403
    assert http.post(url, data={"to": "assigned", "csrf_token": "x" * 43}, allow_redirects=False,
                     timeout=30).status_code == 403
    cross = http.post(url, data={"to": "assigned", "csrf_token": http.csrf}, allow_redirects=False, timeout=30,
                      headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert _status(demo_url, code) == "new"


# -- the audit trail names the authenticated user or token ---------------------------------------


def _open_incident(demo_url: str) -> str:
    with psycopg.connect(demo_url) as conn:
        return conn.execute("SELECT ticket_code FROM incidents WHERE status = 'new' ORDER BY id DESC LIMIT 1"
                            ).fetchone()[0]


def _status(demo_url: str, code: str) -> str:
    with psycopg.connect(demo_url) as conn:
        return conn.execute("SELECT status FROM incidents WHERE ticket_code = %s", (code,)).fetchone()[0]


def _audit(demo_url: str, table: str, key: str) -> list[tuple[str, str]]:
    with psycopg.connect(demo_url) as conn:
        return conn.execute("SELECT actor, action FROM audit_log WHERE table_name = %s AND row_key = %s ORDER BY id",
                            (table, key)).fetchall()


def test_board_transition_is_audited_as_the_logged_in_user_not_a_form_field(server, sessions, demo_url):
    code = _open_incident(demo_url)
    http = sessions["operator"]
    r = http.post(f"{server}/incidents/{code}/transition",
                  data={"to": "assigned", "csrf_token": http.csrf, "actor": "someone-else"},
                  allow_redirects=False, timeout=30)
    assert r.status_code == 303, r.text[:500]
    assert _status(demo_url, code) == "assigned"
    with psycopg.connect(demo_url) as conn:
        key = str(conn.execute("SELECT id FROM incidents WHERE ticket_code = %s", (code,)).fetchone()[0])
        history = conn.execute("SELECT actor FROM incident_transitions WHERE incident_id = %s::bigint"
                               " ORDER BY id DESC LIMIT 1", (key,)).fetchone()
    assert ("user:operator-test", "UPDATE") in _audit(demo_url, "incidents", key)
    assert history[0] == "user:operator-test"
    assert not any("someone-else" in actor for actor, _ in _audit(demo_url, "incidents", key))


def test_json_transition_with_a_token_needs_no_csrf_and_is_audited_as_the_token(server, tokens, demo_url):
    code = _open_incident(demo_url)
    r = requests.post(f"{server}/incidents/{code}/transition", json={"to": "assigned", "actor": "forged"},
                      headers=auth(tokens["operator"]), timeout=30)
    assert r.status_code == 200, r.text
    with psycopg.connect(demo_url) as conn:
        key = str(conn.execute("SELECT id FROM incidents WHERE ticket_code = %s", (code,)).fetchone()[0])
        token_name = conn.execute("SELECT name FROM api_tokens WHERE token_hash = sha256(%s::bytea)",
                                  (tokens["operator"].encode(),)).fetchone()[0]
    assert (f"token:{token_name}", "UPDATE") in _audit(demo_url, "incidents", key)
    # A planner's token may not move incidents.
    other = _open_incident(demo_url)
    r = requests.post(f"{server}/incidents/{other}/transition", json={"to": "assigned"},
                      headers=auth(tokens["planner"]), timeout=30)
    assert r.status_code == 403


def test_citizen_report_is_audited_as_web_citizen(server, demo_url):
    r = requests.post(f"{server}/api/reports", timeout=30, json={
        "category": "infrastructure", "description": "Ống nước vỡ trên đường, nước tràn ra đường",
        "location": {"type": "Point", "coordinates": [103.97, 22.48]}, "name": "Nguyễn Văn Thử",
        "contact": "0912000111"})
    assert r.status_code in (200, 201), r.text
    code = r.json()["ticket_code"]
    with psycopg.connect(demo_url) as conn:
        key = str(conn.execute("SELECT id FROM incidents WHERE ticket_code = %s", (code,)).fetchone()[0])
    assert ("web:citizen", "INSERT") in _audit(demo_url, "incidents", key)


# -- OGC API: restricted fields and layers ----------------------------------------------------------


def _ogc_responses(server: str, layer_id: str, headers: dict, item_id) -> dict[str, str]:
    """Every OGC response that could carry a layer's fields, as text."""
    base = f"{server}/ogc/collections/{layer_id}"
    paths = {
        "geojson": f"{base}/items?limit=200&f=json",
        "html": f"{base}/items?limit=200&f=html",
        "csv": f"{base}/items?limit=200&f=csv",
        "item": f"{base}/items/{item_id}?f=json",
        "item_html": f"{base}/items/{item_id}?f=html",
        "queryables": f"{base}/queryables?f=json",
        "schema": f"{base}/schema?f=json",
        "collection": f"{base}?f=json",
    }
    out = {}
    for kind, url in paths.items():
        r = requests.get(url, headers=headers, timeout=120)
        assert r.status_code == 200, (kind, url, r.status_code, r.text[:300])
        out[kind] = r.text
    return out


def _first_id(demo_url: str, layer_id: str, field: str):
    layer = REGISTRY[layer_id]
    with psycopg.connect(demo_url) as conn:
        return conn.execute(psycopg.sql.SQL("SELECT {id} FROM {t} WHERE {f} IS NOT NULL ORDER BY {id} LIMIT 1").format(
            id=psycopg.sql.Identifier(layer.id_field), t=psycopg.sql.Identifier(layer.table),
            f=psycopg.sql.Identifier(field))).fetchone()[0]


@pytest.mark.parametrize(("layer_id", "field"), RESTRICTED)
def test_restricted_fields_reach_only_the_roles_that_may_see_them(server, demo_url, tokens, secrets_in_data,
                                                                  layer_id, field):
    layer = REGISTRY[layer_id]
    spec = layer.field(field)
    item_id = _first_id(demo_url, layer_id, field)
    values = secrets_in_data[layer_id, field]
    callers = {"anonymous": {}, **{role: auth(tokens[role]) for role in ROLES}}
    for role, headers in callers.items():
        texts = _ogc_responses(server, layer_id, headers, item_id)
        may = rules.may_see_field(role, spec)
        for kind, text in texts.items():
            leaked = [v for v in values if v in text or json.dumps(v, ensure_ascii=False)[1:-1] in text]
            if not may:
                assert field not in text and not leaked, (role, kind)
        if may:
            assert json.loads(texts["item"])["properties"][field] is not None, role
            assert field in json.loads(texts["queryables"])["properties"], role
            assert field in texts["csv"].splitlines()[0], role
        # Filtering or sorting on a field one may not see is a 400, as for a field that does not exist.
        for query in (f"sortby={field}", f"filter={field}%20IS%20NOT%20NULL", f"properties={field}"):
            r = requests.get(f"{server}/ogc/collections/{layer_id}/items?limit=1&{query}", headers=headers, timeout=60)
            if may:
                assert r.status_code == 200, (role, query, r.text[:300])
            else:
                assert r.status_code == 400 and field not in json.dumps(r.json().get("features", [])), (role, query)


def test_restricted_fields_never_on_pages_for_roles_that_may_not_see_them(server, sessions, demo_url,
                                                                          secrets_in_data):
    """The staff pages: the incident board and detail (operators) and permits (viewers, planners)."""
    reporters = secrets_in_data["incidents", "reporter_contact"] + secrets_in_data["incidents", "reporter_name"]
    applicants = (secrets_in_data["building_permits", "applicant_id_no"]
                  + secrets_in_data["building_permits", "applicant_name"])
    with psycopg.connect(demo_url) as conn:
        permit = conn.execute("SELECT id, permit_no FROM building_permits WHERE applicant_id_no = %s",
                              (applicants[0],)).fetchone()
    for role in ("viewer", "planner"):
        http = sessions[role]
        for path in ("/permits", f"/permits/api/{permit[0]}", f"/permits/api/search?q={permit[1]}"):
            r = http.get(server + path, timeout=60)
            assert r.status_code == 200
            assert not any(v in r.text for v in applicants + reporters), (role, path)
    # The public tracking page never shows the reporter.
    with psycopg.connect(demo_url) as conn:
        code = conn.execute("SELECT ticket_code FROM incidents WHERE reporter_contact = %s",
                            (reporters[0],)).fetchone()[0]
    for path in (f"/track/{code}", f"/api/track/{code}"):
        r = requests.get(server + path, timeout=30)
        assert r.status_code == 200 and reporters[0] not in r.text, path


def test_non_public_layers_follow_readable_by(demo_url, tmp_path):
    """A layer declared `public: false, readable_by: [operator, admin]` is absent for everyone else."""
    from gis_core import ogc_config

    src = (Settings().layers_dir / "cameras.yml").read_text(encoding="utf-8")
    layers = tmp_path / "layers"
    layers.mkdir()
    (layers / "cameras.yml").write_text(src + "public: false\nreadable_by: [operator, admin]\n", encoding="utf-8")
    registry = Registry.load(layers)
    settings = Settings(database_url=demo_url, var_dir=tmp_path / "var")
    base = {"resources": {"zoning-check": {"type": "process"}}, "server": {}}
    for role in ROLES:
        config = ogc_config.for_role(base, registry, settings, role)
        assert ("cameras" in config["resources"]) == (role in ("operator", "admin")), role
        assert "zoning-check" in config["resources"]
    assert "cameras" not in ogc_config.build(registry)["resources"]


# -- OGC API Features Part 4: transactions -------------------------------------------------------

POINT = {"type": "Point", "coordinates": [103.975, 22.485]}


def _school(demo_url: str) -> dict:
    """A school feature whose properties are those the registry declares (a real commune's code)."""
    with psycopg.connect(demo_url) as conn:
        commune = conn.execute("SELECT code FROM communes ORDER BY code LIMIT 1").fetchone()[0]
        sample = conn.execute("SELECT to_jsonb(s) FROM schools s LIMIT 1").fetchone()[0]
    declared = {f.name for f in REGISTRY["schools"].fields} - {"id"}
    properties = {k: v for k, v in sample.items() if k in declared}
    properties.update(code="TH-T001", name="Trường Tiểu học Thử Nghiệm", commune_code=commune)
    return {"type": "Feature", "geometry": POINT, "properties": properties}


def test_transactions_need_a_token_of_a_role_that_may_write(server, sessions, tokens, demo_url):
    url = f"{server}/ogc/collections/schools/items"
    feature = _school(demo_url)
    body = json.dumps(feature)
    geo = {"Content-Type": "application/geo+json"}
    assert requests.post(url, data=body, headers=geo, timeout=30).status_code == 401
    # A logged-in steward's cookie is not enough: transactions are for API tokens (no CSRF to forge).
    assert sessions["steward"].post(url, data=body, headers=geo, timeout=30).status_code == 401
    readers = [role for role in ROLES if not rules.may_write_layer(role, REGISTRY["schools"])]
    assert readers == ["viewer", "planner", "operator"]
    for role in readers:
        r = requests.post(url, data=body, headers={**geo, **auth(tokens[role])}, timeout=30)
        assert r.status_code == 403, (role, r.status_code, r.text[:200])
        assert "không được ghi" in r.json()["description"]
    # The OpenAPI document each caller gets documents the transactions it may make, and only those.
    item_path = "/collections/schools/items/{featureId}"
    public_doc = requests.get(f"{server}/ogc/openapi?f=json", timeout=120).json()
    steward_doc = requests.get(f"{server}/ogc/openapi?f=json", headers=auth(tokens["steward"]), timeout=120).json()
    assert "put" not in public_doc["paths"][item_path] and "delete" not in public_doc["paths"][item_path]
    assert {"put", "delete"} <= set(steward_doc["paths"][item_path])
    for method in ("put", "patch", "delete"):
        r = requests.request(method, f"{url}/1", data=body, headers={**geo, **auth(tokens["viewer"])}, timeout=30)
        assert r.status_code == 403, method
        assert requests.request(method, f"{url}/1", data=body, headers=geo, timeout=30).status_code == 401


def test_create_replace_update_delete_with_audit_rows(server, tokens, demo_url):
    url = f"{server}/ogc/collections/schools/items"
    headers = {"Content-Type": "application/geo+json", **auth(tokens["steward"])}
    feature = _school(demo_url)
    with psycopg.connect(demo_url) as conn:
        token_name = conn.execute("SELECT name FROM api_tokens WHERE token_hash = sha256(%s::bytea)",
                                  (tokens["steward"].encode(),)).fetchone()[0]
    actor = f"token:{token_name}"

    created = requests.post(url, data=json.dumps(feature), headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    new_id = created.headers["Location"].rsplit("/", 1)[1]
    item = requests.get(f"{url}/{new_id}?f=json", timeout=30).json()
    assert item["properties"]["name"] == "Trường Tiểu học Thử Nghiệm"
    assert item["geometry"]["coordinates"] == [103.975, 22.485]

    replaced = dict(feature, properties={**feature["properties"], "name": "Trường Tiểu học Đổi Tên"},
                    geometry={"type": "Point", "coordinates": [103.98, 22.49]})
    r = requests.put(f"{url}/{new_id}", data=json.dumps(replaced), headers=headers, timeout=30)
    assert r.status_code == 204, r.text
    r = requests.patch(f"{url}/{new_id}", data=json.dumps({"type": "Feature", "properties": {"name": "Trường Vá"}}),
                       headers=headers, timeout=30)
    assert r.status_code == 204, r.text
    item = requests.get(f"{url}/{new_id}?f=json", timeout=30).json()
    assert item["properties"]["name"] == "Trường Vá" and item["geometry"]["coordinates"] == [103.98, 22.49]
    assert item["properties"]["code"] == "TH-T001"             # PATCH left the rest alone

    assert requests.delete(f"{url}/{new_id}", headers=headers, timeout=30).status_code == 200
    assert requests.get(f"{url}/{new_id}?f=json", timeout=30).status_code == 404
    assert requests.delete(f"{url}/{new_id}", headers=headers, timeout=30).status_code == 404
    assert requests.put(f"{url}/{new_id}", data=json.dumps(replaced), headers=headers, timeout=30).status_code == 404

    trail = _audit(demo_url, "schools", new_id)
    assert trail == [(actor, "INSERT"), (actor, "UPDATE"), (actor, "UPDATE"), (actor, "DELETE")], trail
    with psycopg.connect(demo_url) as conn:
        before, after = conn.execute("SELECT before, after FROM audit_log WHERE table_name = 'schools'"
                                     " AND row_key = %s AND action = 'UPDATE' ORDER BY id DESC LIMIT 1",
                                     (new_id,)).fetchone()
    assert before["name"] == "Trường Tiểu học Đổi Tên" and after["name"] == "Trường Vá"


BAD_BODIES = [
    ("not json", "{"),
    ("not a feature", json.dumps({"type": "FeatureCollection", "features": []})),
    ("no geometry", json.dumps({"type": "Feature", "properties": {"name": "x"}})),
    ("wrong geometry type", json.dumps({"type": "Feature", "geometry": {"type": "LineString",
                                        "coordinates": [[103.9, 22.4], [104, 22.5]]}, "properties": {}})),
    ("outside lon/lat", json.dumps({"type": "Feature", "geometry": {"type": "Point", "coordinates": [500000, 2400000]},
                                    "properties": {}})),
    ("malformed coordinates", json.dumps({"type": "Feature", "geometry": {"type": "Point", "coordinates": ["a"]},
                                          "properties": {}})),
    ("unknown field", json.dumps({"type": "Feature", "geometry": {"type": "Point", "coordinates": [103.9, 22.4]},
                                  "properties": {"name": "x", "drop table": 1}})),
    ("the id", json.dumps({"type": "Feature", "geometry": {"type": "Point", "coordinates": [103.9, 22.4]},
                           "properties": {"id": 5}})),
    ("nested value", json.dumps({"type": "Feature", "geometry": {"type": "Point", "coordinates": [103.9, 22.4]},
                                 "properties": {"name": {"a": 1}}})),
    ("missing required field", json.dumps({"type": "Feature", "geometry": {"type": "Point",
                                           "coordinates": [103.9, 22.4]}, "properties": {}})),
]


@pytest.mark.parametrize(("why", "body"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_transaction_bodies_are_400_and_change_nothing(server, tokens, demo_url, why, body):
    with psycopg.connect(demo_url) as conn:
        count = conn.execute("SELECT count(*) FROM schools").fetchone()[0]
    r = requests.post(f"{server}/ogc/collections/schools/items", data=body, timeout=30,
                      headers={"Content-Type": "application/geo+json", **auth(tokens["steward"])})
    assert r.status_code == 400, (why, r.status_code, r.text[:300])
    assert "Traceback" not in r.text
    with psycopg.connect(demo_url) as conn:
        assert conn.execute("SELECT count(*) FROM schools").fetchone()[0] == count


def test_invalid_polygon_is_400_with_the_reason(server, tokens):
    bowtie = {"type": "Feature", "properties": {},
              "geometry": {"type": "Polygon", "coordinates": [[[103.9, 22.4], [104.0, 22.5], [104.0, 22.4],
                                                               [103.9, 22.5], [103.9, 22.4]]]}}
    r = requests.post(f"{server}/ogc/collections/building_permits/items", data=json.dumps(bowtie), timeout=30,
                      headers={"Content-Type": "application/geo+json", **auth(tokens["planner"])})
    assert r.status_code == 400 and "Self-intersection" in r.text, r.text[:300]


def test_a_role_writes_only_fields_it_may_see(server, tokens, demo_url):
    """A steward may write cameras but not see stream_url: it may not write it either, and replacing
    a camera leaves the stream address as it was."""
    with psycopg.connect(demo_url) as conn:
        cam_id, stream = conn.execute("SELECT id, stream_url FROM cameras WHERE stream_url IS NOT NULL"
                                      " ORDER BY id LIMIT 1").fetchone()
    url = f"{server}/ogc/collections/cameras/items/{cam_id}"
    steward = {"Content-Type": "application/geo+json", **auth(tokens["steward"])}
    current = requests.get(f"{url}?f=json", headers=steward, timeout=30).json()
    assert "stream_url" not in current["properties"]
    r = requests.patch(url, data=json.dumps({"type": "Feature", "properties": {"stream_url": "rtsp://evil"}}),
                       headers=steward, timeout=30)
    assert r.status_code == 400
    replaced = {"type": "Feature", "geometry": current["geometry"],
                "properties": {**current["properties"], "name": current["properties"]["name"] + " (đã thay)"}}
    r = requests.put(url, data=json.dumps(replaced), headers=steward, timeout=30)
    assert r.status_code == 204, r.text
    with psycopg.connect(demo_url) as conn:
        assert conn.execute("SELECT stream_url FROM cameras WHERE id = %s", (cam_id,)).fetchone()[0] == stream


def test_owslib_reads_restricted_fields_only_with_a_token(server, tokens):
    """OWSLib (a real OGC client) with the token's header sees the field; without it, not."""
    import owslib.ogcapi
    from owslib.ogcapi.features import Features

    public = Features(f"{server}/ogc", timeout=60)
    assert "reporter_contact" not in public.collection_items("incidents", limit=5)["features"][0]["properties"]
    # OWSLib 0.3x adds `headers` to its module-wide REQUEST_HEADERS: put them back for other tests.
    shared = dict(owslib.ogcapi.REQUEST_HEADERS)
    try:
        staff = Features(f"{server}/ogc", headers=auth(tokens["operator"]), timeout=60)
        assert "reporter_contact" in staff.collection_items("incidents", limit=5)["features"][0]["properties"]
        assert "reporter_contact" in staff.collection_queryables("incidents")["properties"]
    finally:
        owslib.ogcapi.REQUEST_HEADERS.clear()
        owslib.ogcapi.REQUEST_HEADERS.update(shared)


def test_admin_audit_page_filters_and_pages(server, sessions, tokens, demo_url):
    ensure_token(demo_url, "admin")
    http = sessions["admin"]
    r = http.get(f"{server}/admin/audit?table=incidents", timeout=60)
    assert r.status_code == 200 and r.text.index("Nhật ký thay đổi") < r.text.index("Audit trail")
    rows = re.findall(r'<td class="actor">(.*?)</td>', r.text, re.S)
    assert rows and all("incidents [" in row for row in re.findall(r"<td>(incidents \[\d+\])</td>", r.text))
    assert re.findall(r"<td>(\w+) \[", r.text) and set(re.findall(r"<td>(\w+) \[", r.text)) == {"incidents"}
    by_actor = http.get(f"{server}/admin/audit?actor=web:citizen", timeout=60).text
    actors = {" ".join(re.sub(r"<[^>]+>", " ", a).split()).split()[0] for a in
              re.findall(r'<td class="actor">(.*?)</td>', by_actor, re.S)}
    assert actors == {"web:citizen"}
    assert http.get(f"{server}/admin/audit?since=2020-01-01&until=2020-01-02", timeout=60).text.count(
        "No entries") == 1
    assert http.get(f"{server}/admin/audit?since=yesterday", timeout=60).status_code == 400
    # Pages: the next link shows older entries only.
    first = http.get(f"{server}/admin/audit", timeout=60).text
    ids = [int(i) for i in re.findall(r'<td class="num">(\d+)</td>', first)]
    assert ids == sorted(ids, reverse=True)
    older = re.search(r'href="([^"]+)" rel="next"', first)
    if len(ids) == 50:
        more = [int(i) for i in re.findall(r'<td class="num">(\d+)</td>',
                                           http.get(server + older[1].replace("&amp;", "&"), timeout=60).text)]
        assert more and max(more) < min(ids)
    else:
        assert older is None
    # Stewards, however trusted with data, do not read the trail.
    assert sessions["steward"].get(f"{server}/admin/audit", timeout=60).status_code == 403
    assert requests.get(f"{server}/admin/audit", headers=auth(tokens["steward"]), timeout=60).status_code == 403


# -- the CLI and what the database keeps ----------------------------------------------------------


def iocgis(url: str, *args: str, stdin: str | None = None):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "gis_core.cli", *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, "DATABASE_URL": url}, timeout=120, check=False)


def test_users_and_tokens_cli(db_url):
    added = iocgis(db_url, "users", "add", "lan", "--role", "operator", "--full-name", "Nguyễn Thị Lan",
                   "--password", PASSWORD)
    assert added.returncode == 0, added.stderr
    assert iocgis(db_url, "users", "add", "lan", "--role", "operator", "--password", PASSWORD).returncode == 1
    short = iocgis(db_url, "users", "add", "minh", "--role", "viewer", "--password", "ngắn")
    assert short.returncode == 1 and "ít nhất" in short.stderr and "at least" in short.stderr
    assert iocgis(db_url, "users", "add", "minh", "--role", "boss", "--password", PASSWORD).returncode == 2
    listed = iocgis(db_url, "users", "list").stdout
    assert "lan" in listed and "operator" in listed and "Nguyễn Thị Lan" in listed

    created = iocgis(db_url, "tokens", "create", "qgis-sync", "--role", "steward", "--days", "30")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("iocgis_") and len(secret) > 40 and "không xem lại được" in created.stderr
    tokens_listed = iocgis(db_url, "tokens", "list").stdout
    assert "qgis-sync" in tokens_listed and "steward" in tokens_listed and secret not in tokens_listed
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT token_hash FROM api_tokens WHERE name = 'qgis-sync'").fetchone()[0]
        password_hash = conn.execute("SELECT password_hash FROM users WHERE name = 'lan'").fetchone()[0]
        trail = conn.execute("SELECT actor, before, after FROM audit_log WHERE table_name IN ('users', 'api_tokens')"
                             " ORDER BY id").fetchall()
    assert secret.encode() not in bytes(stored) and len(bytes(stored)) == 32       # only its SHA-256
    assert password_hash.startswith("scrypt:") and PASSWORD not in password_hash
    # Account changes are audited (by who ran the CLI), never with a secret.
    assert trail and all(actor.startswith("cli:") for actor, _, _ in trail)
    assert not any("password_hash" in (row or {}) or "token_hash" in (row or {}) for _, b, a in trail for row in (b, a))

    from gis_core.auth import accounts

    with psycopg.connect(db_url) as conn:
        assert accounts.token_principal(conn, secret).actor == "token:qgis-sync"
        who, session_id = accounts.login(conn, "lan", PASSWORD, "127.0.0.1")
        assert who.actor == "user:lan" and accounts.session_principal(conn, session_id) == who
    assert iocgis(db_url, "users", "passwd", "lan", "--password", "một mật khẩu mới dài").returncode == 0
    with psycopg.connect(db_url) as conn:
        assert accounts.session_principal(conn, session_id) is None          # a new password ends sessions
        assert accounts.login(conn, "lan", PASSWORD, "127.0.0.1") is None
        assert accounts.login(conn, "lan", "một mật khẩu mới dài", "127.0.0.1") is not None
    assert iocgis(db_url, "users", "disable", "lan").returncode == 0
    with psycopg.connect(db_url) as conn:
        assert accounts.login(conn, "lan", "một mật khẩu mới dài", "127.0.0.1") is None
    assert iocgis(db_url, "tokens", "revoke", "qgis-sync").returncode == 0
    assert iocgis(db_url, "tokens", "revoke", "qgis-sync").returncode == 1
    with psycopg.connect(db_url) as conn:
        assert accounts.token_principal(conn, secret) is None


def test_the_secret_key_file_is_private_and_kept(tmp_path):
    from gis_core.auth.secret import secret_key

    settings = Settings(database_url="postgresql://unused", var_dir=tmp_path / "var")
    first = secret_key(settings)
    assert len(first) >= 32 and (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert secret_key(settings) == first
    assert secret_key(Settings(var_dir=tmp_path / "var", secret_key="k" * 40)) == "k" * 40
    with pytest.raises(ValueError):
        secret_key(Settings(var_dir=tmp_path / "var", secret_key="short"))


@pytest.mark.slow
def test_admin_logs_in_and_reads_the_trail_in_chromium(browser, server, demo_url, artifacts):
    from urllib.parse import urlsplit

    name = ensure_user(demo_url, "admin")
    context = browser.new_context(locale="vi-VN", viewport={"width": 1366, "height": 900})
    page = context.new_page()
    seen: list[str] = []
    problems: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {urlsplit(r.url).path}"))
    try:
        page.goto(f"{server}/admin/audit?table=incidents", wait_until="networkidle")
        assert "/login" in page.url and page.title().startswith("Đăng nhập")
        page.screenshot(path=str(artifacts / "login.png"))
        page.fill("#name", name)
        page.fill("#password", "sai mật khẩu")
        page.click("#login-form button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert "Sai tên đăng nhập hoặc mật khẩu" in page.locator("#login-error").inner_text()
        page.fill("#name", name)
        page.fill("#password", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert page.url.endswith("/admin/audit?table=incidents"), page.url
        assert page.locator("#audit tbody tr").count() >= 1
        cells = page.locator("#audit tbody td:nth-child(5)").all_inner_texts()
        assert cells and all(c.startswith("incidents [") for c in cells), cells
        page.screenshot(path=str(artifacts / "admin_audit.png"), full_page=False)
        page.click("nav button[type=submit]")                       # log out
        page.wait_for_load_state("networkidle")
        assert "/login" in page.url
        page.goto(f"{server}/admin/audit", wait_until="networkidle")
        assert "/login" in page.url                                  # the session is gone
    finally:
        context.close()
    assert problems == ["401 /login"], problems                      # only the wrong password
    assert all(urlsplit(u).hostname == "127.0.0.1" or u.startswith("data:") for u in seen)
