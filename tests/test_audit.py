"""The audit trail is written by the database: every write path (SQL as any role, the ETL, citizens'
reports, operators' transitions, cameras) leaves rows in audit_log with its actor and before/after."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import urllib.request

import psycopg
import pytest
from conftest import ensure_token
from psycopg.rows import dict_row
from test_etl_files import SCHOOLS, copy_boundaries, frame

from gis_core.audit import AuditFilter, entries, set_actor, where_clause

INSIDE = (103.9700, 22.4980)   # Cốc Lếu, Lào Cai ward


def trail(conn, table: str, **where) -> list[dict]:
    conds = " AND ".join(f"{k} = %({k})s" for k in where) or "TRUE"   # test-only, keys are literals here
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT * FROM audit_log WHERE table_name = %(t)s AND {conds} ORDER BY id",
                    {"t": table, **where})
        return cur.fetchall()




def test_sql_insert_update_delete_with_actor_and_changed_columns(units):
    conn = units
    with conn.transaction():
        set_actor(conn, "test:Nguyễn  Văn\tA")
        sid = conn.execute("""INSERT INTO schools (code, name, name_unaccent, level, ownership, students,
                              commune_code, source, geom) VALUES ('T-1', 'Trường Một', 'truong mot', 'primary',
                              'public', 100, '99001', 'test', ST_Point(103.5, 22.5, 4326)) RETURNING id"""
                           ).fetchone()[0]
    conn.execute("UPDATE schools SET students = 120, name = 'Trường Một B' WHERE id = %s", (sid,))
    conn.execute("UPDATE schools SET students = 120 WHERE id = %s", (sid,))   # changes nothing: no row
    conn.execute("DELETE FROM schools WHERE id = %s", (sid,))
    conn.commit()
    rows = trail(conn, "schools", row_key=str(sid))
    assert [r["action"] for r in rows] == ["INSERT", "UPDATE", "DELETE"]
    ins, upd, dele = rows
    assert ins["actor"] == "test:Nguyễn Văn A"   # whitespace folded
    assert ins["before"] is None and ins["after"]["code"] == "T-1" and ins["after"]["students"] == 100
    # Geometry as hex EWKB: exact, with its SRID, and PostGIS reads it back.
    assert conn.execute("SELECT ST_AsEWKT(%s::geometry)", (ins["after"]["geom"],)).fetchone()[0] == \
        "SRID=4326;POINT(103.5 22.5)"
    # Without iocgis.actor (its transaction has ended), the database role acts.
    role = conn.execute("SELECT current_user").fetchone()[0]
    assert upd["actor"] == role and upd["db_user"] == role
    assert upd["before"] == {"students": 100, "name": "Trường Một"}
    assert upd["after"] == {"students": 120, "name": "Trường Một B"}
    assert dele["after"] is None and dele["before"]["name"] == "Trường Một B"
    assert ins["txid"] != upd["txid"]


def test_roles_without_rights_on_audit_log_are_audited_and_cannot_forge_it(units):
    conn = units
    assert not conn.execute("SELECT has_table_privilege('iocgis_ingest', 'audit_log', 'INSERT')").fetchone()[0]
    conn.commit()
    with conn.transaction():
        conn.execute("SET LOCAL ROLE iocgis_ingest")
        conn.execute("""INSERT INTO clinics (code, name, name_unaccent, kind, commune_code, source, geom)
                        VALUES ('C-1', 'Trạm Y tế', 'tram y te', 'commune_station', '99001', 'test',
                                ST_Point(103.5, 22.5, 4326))""")
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("INSERT INTO audit_log (actor, table_name, row_key, action, after)"
                         " VALUES ('x', 'clinics', '1', 'INSERT', '{}')")
    (row,) = trail(conn, "clinics")
    assert row["actor"] == "iocgis_ingest" and row["db_user"] == "iocgis_ingest"


def test_key_change_truncate_and_workflow_tables(units):
    conn = units
    conn.execute("UPDATE admin_units SET name = 'Một Mới' WHERE code = '99001'")
    conn.execute("""INSERT INTO admin_units (code, parent_code, level, kind, name, full_name, name_unaccent,
                    valid_from, source, valid_to) VALUES ('99002', '99', 'commune', 'Xã', 'Hai', 'Xã Hai', 'hai',
                    '2020-01-01', 'test', '2025-07-01')""")
    conn.execute("UPDATE admin_units SET code = '99003' WHERE code = '99002'")
    conn.commit()
    actions = [(r["row_key"], r["action"]) for r in trail(conn, "admin_units")]
    assert actions[-4:] == [("99001", "UPDATE"), ("99002", "INSERT"), ("99002", "DELETE"), ("99003", "INSERT")]
    conn.execute("""INSERT INTO cameras (code, name, kind, status, commune_code, source, geom)
                    SELECT 'CAM-' || i, 'Camera ' || i, 'traffic', 'online', '99001', 'test',
                           ST_Point(103.5, 22.5, 4326)
                    FROM generate_series(1, 3) i""")
    conn.execute("TRUNCATE cameras CASCADE")
    conn.commit()
    assert [r["action"] for r in trail(conn, "cameras")] == ["INSERT"] * 3 + ["DELETE"] * 3
    # The workflow side tables are audited too; a photo's bytes stay out of the trail.
    triggers = {r[0] for r in conn.execute(
        "SELECT DISTINCT event_object_table FROM information_schema.triggers WHERE trigger_name LIKE 'audit_%'")}
    assert triggers == {"admin_units", "landuse_zones", "building_permits", "schools", "clinics", "cameras",
                        "incidents", "incident_workflow", "incident_transitions", "incident_photos",
                        "users", "api_tokens"}


def test_etl_bulk_entry_lists_interleaved_ids_as_ranges(units):
    """A run's insert whose ids are not one run of numbers (another writer took some in between):
    the entry lists every range, and audit_etl_inserts gives exactly those rows back."""
    conn = units
    run = conn.execute("INSERT INTO etl_runs (source, layer, status) VALUES ('t', 'schools', 'running')"
                       " RETURNING id").fetchone()[0]
    conn.commit()
    with conn.transaction():
        conn.execute("SELECT set_config('iocgis.etl_run', %s, true)", (str(run),))
        start = conn.execute("SELECT coalesce(max(id), 0) + 1000 FROM schools").fetchone()[0]
        ids = [start, start + 1, start + 2, start + 7, start + 9]
        conn.execute("""INSERT INTO schools OVERRIDING SYSTEM VALUE SELECT i, 'G-' || i, 'Trường ' || i, 'truong',
                        'primary', 'public', NULL, NULL, '99001', 'test', ST_Point(103.5, 22.5, 4326)
                        FROM unnest(%s::bigint[]) i""", (ids,))
    conn.commit()
    (entry,) = trail(conn, "schools", etl_run=run)
    assert entry["row_key"] == f"etl_run:{run}" and entry["actor"] == "etl:t" and entry["action"] == "INSERT"
    assert entry["after"] == {"etl_run": run, "rows": 5,
                              "ids": [[start, start + 2], [start + 7, start + 7], [start + 9, start + 9]]}
    with conn.cursor(row_factory=dict_row) as cur:
        back = cur.execute("SELECT * FROM audit_etl_inserts(%s)", (run,)).fetchall()
    assert [int(r["row_key"]) for r in back] == ids and [r["after"]["code"] for r in back] == [f"G-{i}" for i in ids]
    # Asked for by a row's key, the trail finds the run's entry holding it, and only for those ids.
    for key, found in ((start + 7, True), (start + 8, False), (start, True)):
        hits = entries(conn, AuditFilter(table="schools", row_key=str(key)))
        assert [e["id"] for e in hits] == ([entry["id"]] if found else []), key
    # Outside a run, the same insert is audited row by row.
    conn.execute("INSERT INTO schools (code, name, name_unaccent, level, ownership, commune_code, source, geom)"
                 " VALUES ('G-x', 'Trường x', 'truong x', 'primary', 'public', '99001', 'test',"
                 " ST_Point(103.5, 22.5, 4326))")
    conn.commit()
    assert trail(conn, "schools", action="INSERT")[-1]["after"]["code"] == "G-x"


def test_where_clause_is_parameterised():
    where, params = where_clause(AuditFilter(table="x'; DROP TABLE audit_log; --", actor="a", limit=5))
    text = where.as_string(None)
    assert "DROP" not in text and params["table"].startswith("x'")


ENV = {**os.environ}


def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gis_core.cli", *args], env={**ENV, "DATABASE_URL": url},
                          capture_output=True, text=True, timeout=300, check=False)


def test_etl_load_is_audited_as_its_source(db_url, demo_url, tmp_path):
    """An ETL run's inserts are one entry naming the run and the ids it created (0028), each row
    as inserted given back by audit_etl_inserts from the run's history versions; its updates are
    entries per row, before and after."""
    copy_boundaries(demo_url, db_url)
    path = tmp_path / "truong.geojson"
    frame(SCHOOLS).to_file(path, driver="GeoJSON")
    done = cli(db_url, "etl", "load", "schools", str(path))
    assert done.returncode == 0, done.stderr
    with psycopg.connect(db_url) as conn:
        rows = trail(conn, "schools")
        run_id = conn.execute("SELECT max(id) FROM etl_runs").fetchone()[0]
        loaded = dict(conn.execute("SELECT id, code FROM schools").fetchall())
        geoms = dict(conn.execute("SELECT id, geom::text FROM schools").fetchall())
        with conn.cursor(row_factory=dict_row) as cur:
            expanded = cur.execute("SELECT * FROM audit_etl_inserts(%s)", (run_id,)).fetchall()
    assert len(rows) == 1 and rows[0]["action"] == "INSERT" and rows[0]["row_key"] == f"etl_run:{run_id}"
    assert rows[0]["actor"] == "etl:load:schools" and rows[0]["etl_run"] == run_id
    bulk = rows[0]["after"]
    assert bulk["rows"] == len(SCHOOLS) and bulk["etl_run"] == run_id
    assert {i for lo, hi in bulk["ids"] for i in range(lo, hi + 1)} == set(loaded)
    assert len(expanded) == len(SCHOOLS)
    assert {(int(r["row_key"]), r["after"]["code"]) for r in expanded} == set(loaded.items())
    assert {r["after"]["id"]: r["after"]["geom"] for r in expanded} == geoms
    assert {(r["audit_id"], r["actor"], r["table_name"], r["at"]) for r in expanded} == \
        {(rows[0]["id"], "etl:load:schools", "schools", rows[0]["at"])}

    renamed = [{**SCHOOLS[0], "name": "Trường Tiểu học Kim Tân mới"}, *SCHOOLS[1:]]
    frame(renamed).to_file(path, driver="GeoJSON")
    assert cli(db_url, "etl", "load", "schools", str(path)).returncode == 0
    with psycopg.connect(db_url) as conn:
        update = trail(conn, "schools", action="UPDATE")
        second = conn.execute("SELECT max(id) FROM etl_runs").fetchone()[0]
        assert conn.execute("SELECT count(*) FROM audit_etl_inserts(%s)", (second,)).fetchone()[0] == 0
    assert len(update) == 1 and update[0]["etl_run"] == second and update[0]["actor"] == "etl:load:schools"
    assert update[0]["before"] == {"name": SCHOOLS[0]["name"], "name_unaccent": "truong tieu hoc kim tan"}
    assert update[0]["after"]["name"] == "Trường Tiểu học Kim Tân mới"

    shown = cli(db_url, "audit", "--table", "schools", "--limit", "2")
    assert shown.returncode == 0 and shown.stdout.count("etl:load:schools") == 2 and "2 mục / entries" in shown.stdout
    assert f"schools[etl_run:{run_id}]" in shown.stdout
    as_json = cli(db_url, "audit", "--table", "schools", "--since", dt.date.today().isoformat(), "--json")
    assert [json.loads(line)["action"] for line in as_json.stdout.splitlines()] == ["UPDATE", "INSERT"]
    assert cli(db_url, "audit", "--table", "nope").returncode == 2
    bad = cli(db_url, "audit", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def post(url: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_web_writes_are_audited_with_their_actor(server, demo_url):
    status, receipt = post(f"{server}/api/reports", {
        "category": "infrastructure", "description": "Ống nước vỡ trên đường Hoàng Liên, nước tràn ra đường",
        "location": {"type": "Point", "coordinates": list(INSIDE)}, "name": "Lò Văn Kiểm", "contact": "0912000111"})
    assert status == 201
    code = receipt["ticket_code"]
    # The actor is the operator's API token, whatever the body claims.
    status, _ = post(f"{server}/incidents/{code}/transition", {"to": "assigned", "actor": "Trực ban Hà",
                                                               "agency": "ubnd_xa"}, ensure_token(demo_url, "operator"))
    assert status == 200
    with psycopg.connect(demo_url) as conn:
        incident_id = conn.execute("SELECT id FROM incidents WHERE ticket_code = %s", (code,)).fetchone()[0]
        camera = conn.execute("SELECT code FROM cameras ORDER BY id LIMIT 1").fetchone()[0]
        rows = trail(conn, "incidents", row_key=str(incident_id))
        moves = trail(conn, "incident_transitions")
        workflow = trail(conn, "incident_workflow", row_key=str(incident_id))
    created, assigned = rows
    assert created["actor"] == "web:citizen" and created["action"] == "INSERT"
    assert created["after"]["ticket_code"] == code and created["after"]["reporter_contact"] == "0912000111"
    assert assigned["actor"] == "token:operator-token" and assigned["action"] == "UPDATE"
    assert assigned["before"]["status"] == "new" and assigned["after"]["status"] == "assigned"
    assert [m["actor"] for m in moves if m["after"]["incident_id"] == incident_id] == \
        ["web:citizen", "token:operator-token"]
    assert workflow[-1]["actor"] == "token:operator-token"
    assert workflow[-1]["after"]["agency_code"] == "ubnd_xa"

    status, _ = post(f"{server}/api/cameras/{camera}/heartbeat", {})
    assert status == 200
    with psycopg.connect(demo_url) as conn:
        beat = conn.execute("SELECT actor, after FROM audit_log WHERE table_name = 'cameras' AND action = 'UPDATE'"
                            " AND row_key = (SELECT id::text FROM cameras WHERE code = %s) ORDER BY id DESC LIMIT 1",
                            (camera,)).fetchone()
    assert beat[0] == f"device:{camera}" and "last_seen" in beat[1]
