"""What the audit trail (postgis/migrations/0019_audit_triggers.sql) costs a bulk load, measured in
one run three ways on the same file and the same database:

  none       the audit triggers of `schools` disabled (the history and version triggers stay)
  statement  the triggers as migrated: statement-level, transition tables, one INSERT ... SELECT
  row        the textbook alternative: a row-level trigger writing one audit row per call (it keeps
             geometry as to_jsonb makes it, GeoJSON, which alone costs ~20 us a row; the migrated
             triggers store hex EWKB, see audit_columns in 0019)

Each way: `iocgis etl load schools FILE` of N new points (insert), the same points with other values
(update of every row), then one SQL DELETE of them all. Prints seconds per step and the overhead
against `none`, and the audit rows and bytes each way adds.

Uses DATABASE_URL when set (its demo boundaries must be loaded), else starts a throwaway cluster:

    .venv/bin/python bench/audit_overhead.py [--points 100000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import psycopg
from etl_load import make_gpkg, province, throwaway_database
from psycopg import sql

from etl.pipeline import run_source
from etl.sources import Source
from gis_core.registry import Registry
from gis_core.settings import Settings

TAG = "bench-audit"
TRIGGERS = ("audit_insert", "audit_update", "audit_delete")

ROW_LEVEL = """
CREATE OR REPLACE FUNCTION bench_audit_row() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE oj jsonb; nj jsonb; b jsonb; a jsonb;
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO audit_log (actor, db_user, etl_run, table_name, row_key, action, before, after)
    VALUES (audit_actor(), audit_db_user(), nullif(current_setting('iocgis.etl_run', true), '')::bigint,
            TG_TABLE_NAME, NEW.id::text, 'INSERT', NULL, to_jsonb(NEW));
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO audit_log (actor, db_user, etl_run, table_name, row_key, action, before, after)
    VALUES (audit_actor(), audit_db_user(), nullif(current_setting('iocgis.etl_run', true), '')::bigint,
            TG_TABLE_NAME, OLD.id::text, 'DELETE', to_jsonb(OLD), NULL);
  ELSIF OLD IS DISTINCT FROM NEW THEN
    oj := to_jsonb(OLD); nj := to_jsonb(NEW);
    SELECT jsonb_object_agg(e.key, e.value), jsonb_object_agg(e.key, nj -> e.key) INTO b, a
    FROM jsonb_each(oj) e WHERE (nj -> e.key) IS DISTINCT FROM e.value;
    INSERT INTO audit_log (actor, db_user, etl_run, table_name, row_key, action, before, after)
    VALUES (audit_actor(), audit_db_user(), nullif(current_setting('iocgis.etl_run', true), '')::bigint,
            TG_TABLE_NAME, NEW.id::text, 'UPDATE', b, a);
  END IF;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS bench_audit_row ON schools;
CREATE TRIGGER bench_audit_row AFTER INSERT OR UPDATE OR DELETE ON schools
  FOR EACH ROW EXECUTE FUNCTION bench_audit_row();
ALTER TABLE schools DISABLE TRIGGER bench_audit_row;
"""


def set_mode(url: str, mode: str) -> None:
    toggle = sql.SQL("ALTER TABLE schools {} TRIGGER {}")
    with psycopg.connect(url, autocommit=True) as conn:
        for name in TRIGGERS:
            conn.execute(toggle.format(sql.SQL("ENABLE" if mode == "statement" else "DISABLE"), sql.Identifier(name)))
        conn.execute(toggle.format(sql.SQL("ENABLE" if mode == "row" else "DISABLE"),
                                   sql.Identifier("bench_audit_row")))


def audit_size(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*), coalesce(sum(pg_column_size(a.*)), 0) FROM audit_log a"
                            " WHERE table_name = 'schools'").fetchone()


def one_way(url: str, registry: Registry, first: Path, second: Path, mode: str) -> dict[str, float]:
    set_mode(url, mode)
    rows0, bytes0 = audit_size(url)
    times = {}
    started = time.perf_counter()
    inserted = run_source(url, registry, Source.adhoc("schools", first, tag=TAG))
    times["insert"] = time.perf_counter() - started
    started = time.perf_counter()
    updated = run_source(url, registry, Source.adhoc("schools", second, tag=TAG))
    times["update"] = time.perf_counter() - started
    assert inserted.inserted and updated.updated == inserted.inserted, (inserted.summary(), updated.summary())
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        conn.execute("DELETE FROM schools WHERE source = %s", (TAG,))
        conn.commit()
        times["delete"] = time.perf_counter() - started
    rows1, bytes1 = audit_size(url)
    times["audit_rows"], times["audit_mb"] = rows1 - rows0, (bytes1 - bytes0) / 1e6
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs per way; the fastest counts")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="iocgis-bench-audit-"))
    cluster = None
    try:
        url = os.environ.get("DATABASE_URL")
        if not url:
            print("starting a throwaway PostGIS cluster and loading the demo province ...")
            cluster, url = throwaway_database(tmp)
        registry = Registry.load(Settings().layers_dir)
        area = province(url)
        first, second = tmp / "first.gpkg", tmp / "second.gpkg"
        make_gpkg(first, args.points, area, seed=1)
        make_gpkg(second, args.points, area, seed=2)   # the same codes, other values: every row updates
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(ROW_LEVEL)
        results: dict[str, dict[str, float]] = {}
        for _ in range(args.repeat):
            for mode in ("none", "statement", "row"):
                got = one_way(url, registry, first, second, mode)
                best = results.setdefault(mode, got)
                for step in ("insert", "update", "delete"):
                    best[step] = min(best[step], got[step])
        set_mode(url, "statement")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER bench_audit_row ON schools; DROP FUNCTION bench_audit_row()")
        n = args.points
        print(f"\n{n:,} rows, `iocgis etl load` (insert, then update of every row), then one SQL DELETE;"
              f" fastest of {args.repeat}")
        print(f"{'audit':<11}{'insert s':>10}{'update s':>10}{'delete s':>10}{'audit rows':>12}{'audit MB':>10}"
              f"   overhead vs none (insert / update / delete)")
        base = results["none"]
        for mode, r in results.items():
            over = " / ".join(f"{(r[s] / base[s] - 1) * 100:+.0f}%" for s in ("insert", "update", "delete"))
            print(f"{mode:<11}{r['insert']:>10.2f}{r['update']:>10.2f}{r['delete']:>10.3f}"
                  f"{r['audit_rows']:>12,.0f}{r['audit_mb']:>10.1f}   {over}")
    finally:
        if cluster is not None:
            cluster.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
