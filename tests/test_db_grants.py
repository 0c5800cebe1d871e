"""The database holds people who connect to it directly (psql, QGIS, the CLI against a remote
database) to the registry's field and layer rules: a LOGIN role that is a member of an app role's
database role sees and writes what that app role may on the web, no more."""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from gis_core.auth import grants
from gis_core.registry import Registry
from gis_core.settings import PROJECT_ROOT, Settings

_names = itertools.count()
SCHOOL = ("INSERT INTO schools (code, name, name_unaccent, level, ownership, commune_code, source, geom)"
          " VALUES ('T-GRANT', 'Trường Thử', 'truong thu', 'primary', 'public', '99001', 'test',"
          " ST_Point(103.9, 22.4, 4326))")


@contextmanager
def login_as(admin_url: str, db_url: str, group: str):
    """A fresh LOGIN role in `group`, the way a DBA makes one for a person (README), connected to
    the test database; dropped afterwards (roles are cluster-wide)."""
    name = f"grants_test_{os.getpid()}_{next(_names)}"
    password = secrets.token_urlsafe(16)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
            sql.Identifier(name), sql.Literal(password), sql.Identifier(group)))
    try:
        url = make_conninfo(**{**conninfo_to_dict(db_url), "user": name, "password": password})
        with psycopg.connect(url, autocommit=True) as conn:
            yield conn
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def denied(conn: psycopg.Connection, query: str) -> bool:
    try:
        conn.execute(query)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_viewer_reads_public_incident_fields_but_not_reporters(admin_url, db_url):
    with login_as(admin_url, db_url, "iocgis_viewer") as conn:
        assert conn.execute("SELECT id, category FROM incidents").fetchall() == []
        assert denied(conn, "SELECT reporter_contact FROM incidents")
        assert denied(conn, "SELECT * FROM incidents")
        assert denied(conn, "SELECT reporter_name FROM history.incidents")
        assert denied(conn, "SELECT applicant_id_no FROM building_permits")
        # shared non-layer tables come with membership in iocgis_read
        conn.execute("SELECT count(*) FROM indicators")


def test_operator_reads_reporters_planner_reads_applicants_only(admin_url, db_url):
    with login_as(admin_url, db_url, "iocgis_operator") as conn:
        conn.execute("SELECT reporter_name, reporter_contact FROM incidents")
        conn.execute("SELECT stream_url FROM cameras")
        assert denied(conn, "SELECT applicant_id_no FROM building_permits")
    with login_as(admin_url, db_url, "iocgis_planner") as conn:
        conn.execute("SELECT applicant_name, applicant_id_no FROM building_permits")
        conn.execute("SELECT applicant_id_no FROM history.building_permits")
        assert denied(conn, "SELECT reporter_contact FROM incidents")
        assert denied(conn, "SELECT stream_url FROM cameras")


def test_public_role_reads_no_restricted_column_anywhere(conn):
    registry = Registry.load(Settings().layers_dir)
    restricted = [(layer.table, f.name) for layer in registry for f in layer.restricted_fields]
    assert restricted, "the registry has restricted fields to check"
    for schema in ("public", "history"):
        for table, column in restricted:
            if conn.execute("SELECT to_regclass(%s)", (f"{schema}.{table}",)).fetchone()[0] is None:
                continue
            assert not conn.execute("SELECT has_column_privilege('iocgis_read', %s::regclass, %s, 'SELECT')",
                                    (f"{schema}.{table}", column)).fetchone()[0], (schema, table, column)
    # an undeclared column stays hidden: public_reports' view carries the description, the layer does not
    assert not conn.execute("SELECT has_column_privilege('iocgis_read', 'public_reports', 'description',"
                            " 'SELECT')").fetchone()[0]
    assert conn.execute("SELECT has_column_privilege('iocgis_read', 'public_reports', 'answer', 'SELECT')"
                        ).fetchone()[0]


def test_viewer_cannot_write_schools_steward_can(admin_url, db_url, units):
    with login_as(admin_url, db_url, "iocgis_viewer") as viewer:
        assert denied(viewer, SCHOOL)
    with login_as(admin_url, db_url, "iocgis_steward") as steward:
        steward.execute(SCHOOL)   # the history and audit triggers run too
        steward.execute("UPDATE schools SET students = 42 WHERE code = 'T-GRANT'")
        assert steward.execute("SELECT count(*) FROM history.schools WHERE code = 'T-GRANT'").fetchone()[0] == 2
        assert denied(steward, "INSERT INTO incidents (category) VALUES ('x')")
        # The past is written by the history trigger only: a writer cannot forge or rewrite it.
        assert denied(steward, "UPDATE history.schools SET name = 'giả' WHERE code = 'T-GRANT'")
        assert denied(steward, "DELETE FROM history.schools WHERE code = 'T-GRANT'")
        assert denied(steward, "INSERT INTO history.schools SELECT * FROM history.schools WHERE code = 'T-GRANT'")


def test_etl_ingest_role_cannot_rewrite_history(admin_url, db_url):
    with login_as(admin_url, db_url, "iocgis_ingest") as ingest:
        assert not denied(ingest, "SELECT count(*) FROM history.schools")
        assert denied(ingest, "UPDATE history.schools SET name = 'giả'")
        assert denied(ingest, "INSERT INTO history.schools SELECT * FROM history.schools LIMIT 1")


def test_privileges_follow_the_registry_when_reapplied(admin_url, db_url, conn, tmp_path):
    layers = tmp_path / "layers"
    shutil.copytree(Settings().layers_dir, layers)
    path = layers / "incidents.yml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["fields"]["reporter_contact"]["restricted_to"] = ["viewer", "operator", "admin"]
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    grants.apply(conn, Registry.load(layers))
    conn.commit()
    with login_as(admin_url, db_url, "iocgis_viewer") as viewer:
        viewer.execute("SELECT reporter_contact FROM incidents")
        assert denied(viewer, "SELECT reporter_name FROM incidents")

        grants.apply(conn, Registry.load(Settings().layers_dir))
        conn.commit()
        assert denied(viewer, "SELECT reporter_contact FROM incidents")


def test_a_layer_that_is_not_public_is_read_only_by_its_readable_by(conn, tmp_path):
    layers = tmp_path / "layers"
    shutil.copytree(Settings().layers_dir, layers)
    path = layers / "clinics.yml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw.update(public=False, readable_by=["planner", "steward", "admin"])
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    grants.apply(conn, Registry.load(layers))
    readers = {role for role in grants.DB_ROLES if conn.execute(
        "SELECT has_any_column_privilege(%s, 'clinics', 'SELECT')", (role,)).fetchone()[0]}
    assert readers == {"iocgis_planner", "iocgis_steward", "iocgis_admin"}


def test_a_restored_backup_keeps_the_column_grants(db_url, empty_db, tmp_path):
    from gis_core.backup import backup, restore

    backup(db_url, tmp_path / "db.dump")
    restore(empty_db, tmp_path / "db.dump")
    with psycopg.connect(empty_db) as restored:
        can = restored.execute(
            "SELECT has_column_privilege('iocgis_viewer', 'incidents', 'category', 'SELECT'),"
            "       has_column_privilege('iocgis_viewer', 'incidents', 'reporter_contact', 'SELECT'),"
            "       has_column_privilege('iocgis_operator', 'incidents', 'reporter_contact', 'SELECT'),"
            "       has_table_privilege('iocgis_steward', 'schools', 'INSERT')").fetchone()
    assert can == (True, False, True, True)


def test_applying_twice_changes_nothing(conn):
    registry = Registry.load(Settings().layers_dir)
    acl = "SELECT c.relname, c.relacl::text FROM pg_class c WHERE c.relname IN ('incidents', 'schools') ORDER BY 1"
    before = conn.execute(acl).fetchall()
    grants.apply(conn, registry)
    assert conn.execute(acl).fetchall() == before
    for g in grants.plan(conn, registry):
        assert grants.actual(conn, g) == (g.columns, g.writes), g


def test_cli_shows_drift_and_apply_repairs_it(db_url, conn):
    env = {**os.environ, "DATABASE_URL": db_url}
    iocgis = [str(Path(sys.executable).parent / "iocgis"), "db", "grants"]

    def run(*args):
        return subprocess.run([*iocgis, *args], env=env, capture_output=True, text=True, cwd=PROJECT_ROOT,
                              timeout=120, check=False)

    clean = run("show")
    assert clean.returncode == 0, clean.stderr
    assert "public.incidents" in clean.stdout and "≠" not in clean.stdout
    conn.execute("GRANT SELECT ON incidents TO iocgis_viewer")   # a DBA's shortcut
    conn.commit()
    drift = run("show")
    assert drift.returncode == 1
    (drifted,) = [line for line in drift.stdout.splitlines() if line.startswith("≠")]
    assert drifted.startswith("≠ public.incidents") and "iocgis_viewer" in drifted
    applied = run("apply")
    assert applied.returncode == 0, applied.stderr
    assert run("show").returncode == 0
    assert not conn.execute("SELECT has_column_privilege('iocgis_viewer', 'incidents', 'reporter_contact',"
                            " 'SELECT')").fetchone()[0]


@pytest.mark.parametrize("role", grants.DB_ROLES)
def test_every_app_role_exists_and_cannot_log_in(conn, role):
    assert conn.execute("SELECT NOT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,)).fetchone() == (True,)
