"""`iocgis db backup` of the demo database and `iocgis db restore` into an empty database on the test
cluster: the same rows in every layer (counts and checksums of the ordered rows, geometry as EWKB),
the same migrations, audit trail and history; refusals are bilingual and change nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
from psycopg import sql

LAYERS = {"admin_units": "code", "landuse_zones": "id", "building_permits": "id", "schools": "id",
          "clinics": "id", "cameras": "id", "incidents": "id", "incident_workflow": "incident_id",
          "indicator_values": None, "schema_migrations": "version"}


def iocgis(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gis_core.cli", "db", *args],
                          env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True, timeout=600,
                          check=False)


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    out = {}
    with psycopg.connect(url) as conn:
        for table, key in LAYERS.items():
            has_geom = conn.execute("SELECT EXISTS (SELECT 1 FROM information_schema.columns"
                                    " WHERE table_name = %s AND column_name = 'geom')", (table,)).fetchone()[0]
            geom = (sql.SQL("coalesce(encode(ST_AsEWKB(t.geom), 'hex'), '')") if has_geom else sql.SQL("''"))
            order = sql.Identifier("t", key) if key else sql.SQL("t::text")
            query = sql.SQL("SELECT count(*), coalesce(md5(string_agg(t::text || '#' || {}, '|' ORDER BY {})), '')"
                            " FROM {} t").format(geom, order, sql.Identifier(table))
            out[table] = conn.execute(query).fetchone()
        for table in ("audit_log", "history.incidents", "etl_runs"):
            schema, _, name = table.rpartition(".")
            ident = sql.Identifier(schema, name) if schema else sql.Identifier(name)
            out[table] = (conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()[0], "")
        out["triggers"] = (conn.execute("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal").fetchone()[0], "")
    return out


def test_backup_then_restore_into_an_empty_database(demo_url, empty_db, tmp_path):
    dump = tmp_path / "iocgis.dump"
    done = iocgis(demo_url, "backup", str(dump))
    assert done.returncode == 0, done.stderr
    assert "backed up" in done.stdout and dump.read_bytes()[:5] == b"PGDMP"
    assert not (tmp_path / "iocgis.dump.partial").exists()
    before = fingerprint(demo_url)
    restored = iocgis(empty_db, "restore", str(dump))
    assert restored.returncode == 0, restored.stderr
    after = fingerprint(empty_db)
    assert after == before
    assert before["incidents"][0] > 1000 and before["admin_units"][0] > 10   # it really was the demo
    # The audit trail keeps working in the restored database.
    with psycopg.connect(empty_db) as conn:
        conn.execute("UPDATE schools SET students = students + 1 WHERE id = (SELECT min(id) FROM schools)")
        conn.commit()
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == before["audit_log"][0] + 1


def test_refusals_are_bilingual_and_change_nothing(demo_url, db_url, tmp_path):
    dump = tmp_path / "x.dump"
    assert iocgis(demo_url, "backup", str(dump)).returncode == 0
    state = fingerprint(db_url)
    busy = iocgis(db_url, "restore", str(dump))
    assert busy.returncode == 1 and "không trống" in busy.stderr and "not empty" in busy.stderr
    junk = tmp_path / "junk.dump"
    junk.write_text("not a dump")
    bad = iocgis(db_url, "restore", str(junk))
    assert bad.returncode == 1 and "không phải" in bad.stderr and "not a pg_dump" in bad.stderr
    assert fingerprint(db_url) == state
    nowhere = iocgis(demo_url, "backup", str(tmp_path / "no" / "such" / "dir.dump"))
    assert nowhere.returncode == 1 and "No directory" in nowhere.stderr
    down = iocgis("postgresql://iocgis@127.0.0.1:1/none", "backup", str(tmp_path / "y.dump"))
    assert down.returncode == 1 and "Sao lưu thất bại" in down.stderr and "Backup failed" in down.stderr
    assert not (tmp_path / "y.dump").exists()
