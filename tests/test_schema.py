"""Migrations from scratch, the version table, constraints that hold, VN-2000 zones, roles."""

from __future__ import annotations

import psycopg
import pytest

from gis_core.errors import ConfigError
from gis_core.migrate import discover, migrate
from gis_core.settings import Settings

MIGRATIONS = Settings().migrations_dir


def test_migrations_apply_from_scratch_and_are_recorded(empty_db):
    with psycopg.connect(empty_db) as conn:
        done = migrate(conn, MIGRATIONS)
        assert [m.version for m in done] == [m.version for m in discover(MIGRATIONS)]
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
        assert [r[0] for r in rows] == [m.version for m in done]
        assert migrate(conn, MIGRATIONS) == []  # a second run applies nothing


def test_an_edited_migration_is_refused(conn, tmp_path):
    for m in discover(MIGRATIONS):
        (tmp_path / m.path.name).write_bytes(m.path.read_bytes())
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(ConfigError, match="edited"):
        migrate(conn, tmp_path)


def test_vn2000_tm3_zones_present_and_check_point(conn):
    srids = [r[0] for r in conn.execute(
        "SELECT srid FROM spatial_ref_sys WHERE srid BETWEEN 9205 AND 9218 ORDER BY srid")]
    assert srids == list(range(9205, 9219))
    x, y = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint(103.97, 22.48), 4326), 9208) p"
    ).fetchone()
    assert abs(x - 419540.122) < 0.05 and abs(y - 2487019.787) < 0.05
    # and back again, within a millimetre
    lon, lat = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint(419540.122, 2487019.787), 9208), 4326) p"
    ).fetchone()
    assert abs(lon - 103.97) < 1e-7 and abs(lat - 22.48) < 1e-7


def test_roles_exist(conn):
    roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'iocgis_%'")}
    assert {"iocgis_read", "iocgis_ingest", "iocgis_owner"} <= roles
    can = conn.execute(
        "SELECT has_table_privilege('iocgis_read', 'schools', 'SELECT'),"
        "       has_table_privilege('iocgis_read', 'schools', 'INSERT'),"
        "       has_table_privilege('iocgis_read', 'audit_log', 'SELECT'),"
        "       has_table_privilege('iocgis_ingest', 'incidents', 'INSERT')").fetchone()
    assert can == (True, False, False, True)


PROVINCE = ("INSERT INTO admin_units (code, level, kind, name, full_name, name_unaccent, valid_from, source, geom)"
            " VALUES ('15', 'province', 'Tỉnh', 'Lào Cai', 'Tỉnh Lào Cai', 'lao cai', '2025-07-01', 'test',"
            " ST_Multi(ST_MakeEnvelope(103.5, 21.3, 105.0, 22.9, 4326)))")
COMMUNE = ("INSERT INTO admin_units (code, parent_code, level, kind, name, full_name, name_unaccent,"
           " valid_from, source, geom) VALUES ('02800', '15', 'commune', 'Xã', 'Bát Xát', 'Xã Bát Xát',"
           " 'bat xat', '2025-07-01', 'test', ST_Multi(ST_MakeEnvelope(103.8, 22.5, 103.9, 22.6, 4326)))")


def _school(geom_sql: str, commune: str = "02800") -> str:
    return ("INSERT INTO schools (code, name, name_unaccent, level, ownership, commune_code, source, geom)"
            f" VALUES ('S1', 'Trường Tiểu học Bát Xát', 'truong tieu hoc bat xat', 'primary', 'public',"
            f" '{commune}', 'test', {geom_sql})")


@pytest.mark.parametrize("geom_sql, error", [
    ("ST_SetSRID(ST_MakePoint(103.85, 22.55), 3857)", psycopg.errors.InvalidParameterValue),  # wrong SRID
    ("ST_MakeEnvelope(103.8, 22.5, 103.9, 22.6, 4326)", psycopg.errors.InvalidParameterValue),  # wrong type
])
def test_geometry_type_and_srid_enforced(conn, geom_sql, error):
    conn.execute(PROVINCE)
    conn.execute(COMMUNE)
    with pytest.raises(error):
        conn.execute(_school(geom_sql))


def test_constraints_reject_bad_rows(conn):
    conn.execute(PROVINCE)
    conn.execute(COMMUNE)
    conn.execute(_school("ST_SetSRID(ST_MakePoint(103.85, 22.55), 4326)"))
    conn.commit()
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(_school("ST_SetSRID(ST_MakePoint(103.85, 22.55), 4326)", commune="99999").replace("'S1'", "'S2'"))
    conn.rollback()
    with pytest.raises(psycopg.errors.CheckViolation):  # a commune must have a parent
        conn.execute(COMMUNE.replace("'02800', '15'", "'02801', NULL"))
    conn.rollback()
    with pytest.raises(psycopg.errors.CheckViolation):  # camera incidents name their camera
        conn.execute(
            "INSERT INTO incidents (ticket_code, category, source, status, reported_at, commune_code,"
            " description, data_source, geom) VALUES ('PA-1', 'traffic', 'camera', 'new', now(), '02800',"
            " 'x', 'test', ST_SetSRID(ST_MakePoint(103.85, 22.55), 4326))")
    conn.rollback()
    with pytest.raises(psycopg.errors.CheckViolation):  # an invalid (self-crossing) polygon
        conn.execute(COMMUNE.replace("'02800'", "'02802'").replace(
            "ST_Multi(ST_MakeEnvelope(103.8, 22.5, 103.9, 22.6, 4326))",
            "ST_GeomFromText('MULTIPOLYGON(((0 0, 1 1, 1 0, 0 1, 0 0)))', 4326)"))
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM schools").fetchone()[0] == 1
