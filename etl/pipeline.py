"""The one runner for every source: extract -> validate -> transform -> load.

A run is recorded in etl_runs before it starts (status 'running', committed), then everything
else happens in ONE transaction: COPY into a temporary staging table, the commune and the province
judged by PostGIS, the table's CHECK rules evaluated on the staged rows, rejects and repairs
written, the upsert by natural key (rows whose values did not change are not touched), the
snapshot's retirements, and the run's counts. A process killed at any point leaves the layer as
it was; its run stays 'running' until the next run of the same layer marks it failed.

A run that cannot start (no CRS, a mapping naming a missing column, an empty input, an unknown
layer) raises EtlError before any of this: the layer and the staging area are never touched; the
refusal itself is recorded as a failed run so that stewards see it beside the others."""

from __future__ import annotations

import binascii
import json
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
import shapely
from psycopg import sql
from psycopg.types.json import Jsonb

from gis_core.audit import set_actor
from gis_core.registry import Registry
from gis_core.rows import one

from .errors import EtlError
from .readers import Extract, read_file
from .schema import COMMUNE, SURROGATE, TableSpec, introspect
from .sources import Source
from .validate import Checked, Problem, check_rows, missing, resolve_crs, to_wgs84

log = logging.getLogger("etl")
LOCK_CLASS = 7_240_617          # advisory lock class: one run per layer at a time
STAGE = "etl_stage"
COMMUNES_TABLE = "etl_stage_commune"
KEYS_TABLE = "etl_stage_keys"      # a snapshot's keys, every chunk's
POINT_4326_HEADER = bytes.fromhex("0101000020E6100000")   # EWKB, little-endian: a Point with SRID 4326
# Rows checked, staged and loaded at a time: the next chunk is checked while the database loads
# this one. Big enough that a chunk's fixed costs (its statements' planning, ANALYZE) stay small.
CHUNK = 200_000
HINT = "etl_commune_hint"        # staging column: the commune found for an interior point
APPLICATION = "iocgis-etl"

START_RUN = """
INSERT INTO etl_runs (source, layer, checksum, status, request) VALUES (%s, %s, %s, 'running', %s) RETURNING id
"""
# Runs left 'running' by a process that died: nobody holds the layer's lock, so they are over.
MARK_STALE = """
UPDATE etl_runs SET status = 'failed', ended_at = greatest(now(), started_at),
  message = 'Bị ngắt giữa chừng, không ghi gì / interrupted before it committed, nothing was written'
WHERE layer = %s AND status = 'running' AND id <> %s
"""
FAIL_RUN = """
UPDATE etl_runs SET status = 'failed', ended_at = greatest(now(), started_at), message = %s WHERE id = %s
"""
REFUSED_RUN = """
INSERT INTO etl_runs (source, layer, checksum, status, ended_at, n_read, message, request)
VALUES (%s, %s, %s, 'failed', now(), %s, %s, %s) RETURNING id
"""
FINISH_RUN = """
UPDATE etl_runs SET status = %(status)s, ended_at = clock_timestamp(), n_read = %(read)s,
  n_inserted = %(inserted)s, n_updated = %(updated)s, n_unchanged = %(unchanged)s, n_repaired = %(repaired)s,
  n_rejected = %(rejected)s, n_retired = %(retired)s, message = %(message)s
WHERE id = %(id)s
"""

# The commune of each feature the Python side could not decide, in a narrow table of its own (a
# bulk CREATE TABLE AS costs half of an UPDATE of the wide staging rows). The commune the input
# names is kept when the location agrees with it (inside, or within the tolerance of its boundary);
# otherwise, or when the input names none, the commune whose area holds the feature (a point on
# its surface, for lines and polygons), the lowest code on a shared border, so the same input
# always gets the same commune. A point staged with a hint and no commune of its own (strictly
# inside exactly the commune the hint names, found by one vectorised pass over the boundaries read
# from this database: see `interior_communes`) is not here: it takes the hint (COMMUNE_VALUE), the
# same answer without one index probe per row, and the upsert needs no join for it.
ASSIGN_COMMUNE = sql.SQL("""
CREATE TEMP TABLE {communes} ON COMMIT DROP AS
SELECT s.row_no, coalesce(
  (SELECT c.code FROM admin_units c
   WHERE c.code = s.{commune} AND c.level = 'commune' AND c.valid_to IS NULL
     AND (ST_Intersects(c.geom, ST_PointOnSurface(s.{geom}))
          OR ST_DWithin(c.geom::geography, s.{geom}::geography, %(tolerance)s))),
  (SELECT c.code FROM admin_units c
   WHERE c.level = 'commune' AND c.valid_to IS NULL
     AND ST_Intersects(c.geom, ST_PointOnSurface(s.{geom})) ORDER BY c.code LIMIT 1)) AS code
FROM {stage} s WHERE NOT s.rejected AND (s.{commune} IS NOT NULL OR s.{hint} IS NULL)
""")
# A staged row's commune, as the upsert writes it.
COMMUNE_VALUE = sql.SQL("CASE WHEN s.{commune} IS NULL AND s.{hint} IS NOT NULL THEN s.{hint}"
                        " ELSE (SELECT m.code FROM {communes} m WHERE m.row_no = s.row_no) END")
# The current communes' boundaries, lowest code last (so that it wins where interiors overlap).
COMMUNE_BOUNDARIES = """
SELECT code, ST_AsBinary(geom) FROM admin_units
WHERE level = 'commune' AND valid_to IS NULL AND geom IS NOT NULL ORDER BY code DESC
"""
# Just outside every commune but within the tolerance (a GPS fix on the border, a coarser boundary
# than the source's): the nearest commune.
ASSIGN_NEAREST = sql.SQL("""
UPDATE {communes} m SET code = (
  SELECT c.code FROM admin_units c
  WHERE c.level = 'commune' AND c.valid_to IS NULL AND c.geom IS NOT NULL
    AND ST_DWithin(c.geom::geography, s.{geom}::geography, %(tolerance)s)
  ORDER BY c.geom <-> s.{geom}, c.code LIMIT 1)
FROM {stage} s WHERE m.code IS NULL AND s.row_no = m.row_no
""")
CHECK_KNOWN_COMMUNE = sql.SQL("""
SELECT s.row_no, s.{commune} FROM {stage} s
WHERE NOT s.rejected AND s.{commune} IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM admin_units c WHERE c.code = s.{commune} AND c.level = 'commune')
""")
# Rows that found no commune even within the tolerance, with how far out they are.
OUTSIDE = sql.SQL("""
SELECT s.row_no, round(ST_Distance(p.geom::geography, s.{geom}::geography)) FROM {stage} s JOIN {communes} m
  USING (row_no),
  (SELECT ST_Union(geom) AS geom FROM admin_units WHERE level = 'province' AND valid_to IS NULL) p
WHERE m.code IS NULL
""")
# Without commune assignment: outside the province by more than the tolerance. The cheap planar
# test first (CASE fixes the order), the geodesic distance only for what falls outside.
OUTSIDE_NO_COMMUNE = sql.SQL("""
SELECT s.row_no, round(ST_Distance(p.geom::geography, s.{geom}::geography)) FROM {stage} s,
  (SELECT ST_Union(geom) AS geom FROM admin_units WHERE level = 'province' AND valid_to IS NULL) p
WHERE NOT s.rejected AND CASE WHEN ST_Intersects(p.geom, s.{geom}) THEN false
                              ELSE NOT ST_DWithin(p.geom::geography, s.{geom}::geography, %(tolerance)s) END
""")


@dataclass
class RunResult:
    run_id: int | None
    source: str
    layer: str
    status: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: int = 0
    rejected: int = 0
    retired: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    message: str = ""
    rejects: list[dict] = field(default_factory=list)
    # Wall-clock seconds per stage, on the run's own thread: "read" (and reproject), "wait for
    # checks" (the checking thread had not finished the next chunk), "stage" (COPY), "judge" (commune,
    # province, CHECK rules in PostGIS), "upsert" (the layer's rows, indexes, foreign keys and
    # triggers), "finish" (snapshot retirement, rejects and repairs, the run's record, the commit).
    # "check" is the checking thread's own time, overlapped with the others.
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.retired

    def summary(self) -> str:
        rate = self.read / self.seconds if self.seconds else 0.0
        head = "[thử / dry run] " if self.dry_run else (f"run {self.run_id}: " if self.run_id else "")
        return (f"{head}{self.layer} <- {self.source}: {self.status}; read {self.read}, inserted {self.inserted},"
                f" updated {self.updated}, unchanged {self.unchanged}, repaired {self.repaired},"
                f" rejected {self.rejected}, retired {self.retired} ({self.seconds:.1f}s, {rate:,.0f} rows/s)"
                + (f"\n{self.message}" if self.message else ""))


@dataclass
class Prepared:
    """A run's input, refused or accepted as a whole, ready to be checked and transformed chunk by chunk."""

    spec: TableSpec
    key: tuple[str, ...]
    extract: Extract
    mapping: dict[str, str]
    geoms: np.ndarray             # in WGS 84
    assign: bool                  # the commune is assigned by location

    def check(self, source: Source, lo: int, hi: int, seen: dict) -> Checked:
        """Rows lo..hi-1 checked and transformed; `seen` carries the natural keys across chunks."""
        data = self.extract
        return check_rows(self.spec, data.records.iloc[lo:hi].reset_index(drop=True), self.mapping,
                          source.defaults, source.codes, self.geoms[lo:hi], data.ring_closed[lo:hi], self.key,
                          self.assign, source.provenance, offset=lo, seen=seen)

    def columns(self, checked: Checked) -> list[str]:
        """The staged target columns, geometry last."""
        return [c for c in self.spec.columns if c in checked.values] + [self.spec.geometry_column]


def layer_table(registry: Registry, layer_id: str) -> str:
    try:
        return registry[layer_id].table
    except KeyError:
        names = ", ".join(layer.id for layer in registry)
        raise EtlError(f"Không có lớp '{layer_id}' (có: {names}).", f"No layer '{layer_id}' (there are: {names}).") \
            from None


def extract(source: Source, path: Path | None = None) -> Extract:
    if source.kind in ("file", "directory"):
        file = path or source.path
        assert file is not None   # parse_source requires a path of these kinds
        return read_file(file, layer_name=source.layer_name, encoding=source.encoding,
                         csv_geometry=source.geometry)
    from . import upstream

    if source.kind == "ogcapi":
        return upstream.read_ogcapi(source)
    return upstream.read_rest(source)


def mapping_for(source: Source, spec: TableSpec, extract: Extract, assign_commune: bool) -> dict[str, str]:
    """target column -> input column; stops the run when the declaration names a column the input
    lacks, or when a required column can be found nowhere."""
    available = list(extract.records.columns)
    if source.fields:
        unknown_targets = [t for t in source.fields if t not in spec.input_columns()]
        if unknown_targets:
            raise EtlError(
                f"Ánh xạ nêu cột đích không có trong bảng {spec.table}: {', '.join(unknown_targets)}.",
                f"The mapping names target columns that table {spec.table} lacks: {', '.join(unknown_targets)}.")
        absent = [f"{t} <- {s}" for t, s in source.fields.items() if s not in available]
        if absent:
            raise EtlError(
                f"Ánh xạ nêu cột không có trong dữ liệu vào: {', '.join(absent)} (có: {', '.join(available)})."
                " Chưa ghi gì vào CSDL.",
                f"The mapping names columns the input lacks: {', '.join(absent)} (it has: {', '.join(available)})."
                " Nothing was written.")
        mapping = dict(source.fields)
    else:
        lower = {c.lower(): c for c in available}
        mapping = {c: lower[c.lower()] for c in spec.input_columns() if c.lower() in lower}
    lacking = [c for c in spec.required(assign_commune) if c not in mapping and c not in source.defaults]
    if lacking:
        raise EtlError(
            f"Dữ liệu vào thiếu cột bắt buộc: {', '.join(lacking)} (có: {', '.join(available)})."
            " Khai báo ánh xạ (fields) hoặc giá trị mặc định (defaults). Chưa ghi gì vào CSDL.",
            f"The input lacks required columns: {', '.join(lacking)} (it has: {', '.join(available)})."
            " Declare a mapping (fields) or defaults. Nothing was written.")
    return mapping


def prepare(conn: psycopg.Connection, source: Source, table: str, data: Extract) -> Prepared:
    """Everything that may stop a run before the database is written: the layer, an empty input,
    the CRS, the mapping, coordinates that are not what the CRS says; then the reprojection."""
    spec = introspect(conn, table)
    key = spec.natural_key(source.key)
    if len(data) == 0:
        raise EtlError(f"Dữ liệu vào rỗng ({data.origin}): không có dòng nào. Chưa ghi gì vào CSDL.",
                       f"The input is empty ({data.origin}): no rows. Nothing was written.")
    crs = resolve_crs(source.crs, data.crs)
    assign = source.assign_commune and COMMUNE in spec.columns
    mapping = mapping_for(source, spec, data, assign)
    return Prepared(spec, key, data, mapping, to_wgs84(data.geoms, crs), assign)


def _row_data(data: Extract, i: int) -> str:
    props = {k: (None if missing(v) else v) for k, v in data.records.iloc[i].items()}
    g = data.geoms[i]
    geometry = json.loads(shapely.to_geojson(g)) if g is not None else None
    return json.dumps({"properties": props, "geometry": geometry}, ensure_ascii=False, default=str)


def commune_boundaries(cur: psycopg.Cursor) -> list[tuple[str, shapely.Geometry]]:
    """The current communes, read in the run's transaction, prepared for many point tests."""
    out = []
    for code, wkb in cur.execute(COMMUNE_BOUNDARIES).fetchall():
        area = shapely.from_wkb(wkb)
        shapely.prepare(area)
        out.append((code, area))
    return out


def interior_communes(boundaries: list[tuple[str, shapely.Geometry]], geoms: np.ndarray) -> np.ndarray:
    """For each geometry that is a point strictly inside a current commune, that commune's code
    (the lowest where interiors overlap); None for everything else (no point, on or outside a
    boundary), which PostGIS decides row by row. One vectorised GEOS pass per commune over the
    points in its bounding box: the same predicate, the same coordinates as ST_Intersects sees."""
    out = np.full(len(geoms), None, dtype=object)
    points = np.flatnonzero(shapely.get_type_id(geoms) == 0)
    if len(points) == 0:
        return out
    xy = shapely.get_coordinates(geoms[points])
    x, y = xy[:, 0], xy[:, 1]
    order = np.argsort(x, kind="stable")
    xs = x[order]
    for code, area in boundaries:
        minx, miny, maxx, maxy = area.bounds
        lo, hi = np.searchsorted(xs, minx, "left"), np.searchsorted(xs, maxx, "right")
        cand = order[lo:hi]
        cand = cand[(y[cand] >= miny) & (y[cand] <= maxy)]
        if len(cand):
            inside = shapely.contains_xy(area, x[cand], y[cand])
            out[points[cand[inside]]] = code
    return out


@dataclass
class Chunk:
    """Consecutive input rows, checked and transformed: rows lo.. of the input."""

    lo: int
    checked: Checked
    columns: list[str]            # staged target columns, geometry last
    rows: list[tuple]             # as staged: row_no, rejected, the commune hint, the columns
    seconds: float                # spent checking it and making its rows


def chunk_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """(lo, hi) of each chunk: one for an input of up to `size` rows; else a first chunk a quarter
    of the others, so that the database starts loading sooner (nothing overlaps the first check)."""
    if n <= size:
        return [(0, n)]
    edges = [0, *range(max(1, size // 4), n, size), n]
    return list(zip(edges, edges[1:], strict=False))


def _chunks(prep: Prepared, source: Source, boundaries: list | None, size: int) -> Iterator[Chunk]:
    seen: dict = {}
    for lo, hi in chunk_bounds(len(prep.extract), size):
        started = time.perf_counter()
        checked = prep.check(source, lo, hi, seen)
        hints = interior_communes(boundaries, checked.geoms) if boundaries is not None else None
        columns = prep.columns(checked)
        rows = staged_rows(prep, lo, checked, columns, hints)
        yield Chunk(lo, checked, columns, rows, time.perf_counter() - started)


def ahead(items: Iterator, depth: int = 1) -> Generator:
    """`items`, made by a thread of their own up to `depth` ahead of the consumer: the next chunk is
    checked in Python while the database loads this one (psycopg waits for the server without
    the GIL). An error on either side stops both; the thread never outlives the iteration."""
    queue_: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                queue_.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, done))
        except BaseException as exc:   # handed to the consumer, which raises it
            put((False, exc))

    thread = threading.Thread(target=work, name="etl-check", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = queue_.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def ewkb_hex(geoms: np.ndarray) -> np.ndarray:
    """Each geometry as hex EWKB with SRID 4326, as shapely.to_wkb writes it (None stays None).
    Two-dimensional points, the bulk of big loads, are written by numpy in one pass: a fixed
    header and two little-endian doubles each."""
    out = np.full(len(geoms), None, dtype=object)
    present = ~shapely.is_missing(geoms)
    some = geoms[present]
    if not len(some):
        return out
    if (shapely.get_type_id(some) == 0).all() and not (shapely.has_z(some) | shapely.is_empty(some)).any():
        xy = shapely.get_coordinates(some)
        packed = np.empty(len(some), dtype=[("head", "S9"), ("x", "<f8"), ("y", "<f8")])
        packed["head"] = POINT_4326_HEADER
        packed["x"], packed["y"] = xy[:, 0], xy[:, 1]
        out[present] = np.frombuffer(binascii.hexlify(packed.tobytes()).upper(), dtype="S50").astype("U50").tolist()
    else:
        out[present] = shapely.to_wkb(shapely.set_srid(some, 4326), hex=True, include_srid=True)
    return out


def staged_rows(prep: Prepared, lo: int, checked: Checked, columns: list[str],
                hints: np.ndarray | None) -> list[tuple]:
    """The chunk's rows as the staging table takes them, geometry as hex EWKB. Made beside the
    checks, by their thread: the database's thread only streams them."""
    values = [checked.values[c] for c in columns[:-1]]
    wkb = ewkb_hex(checked.geoms)
    ok = checked.ok
    good = np.flatnonzero(ok)
    hint = (hints[good] if hints is not None else np.full(len(good), None, dtype=object)).tolist()
    # Rows are assembled by zip over whole columns (C speed); only rejected rows are built one by one.
    good_cols = [[col[i] for i in good.tolist()] if len(good) < len(ok) else col for col in values]
    rows = list(zip((good + lo + 1).tolist(), [False] * len(good), hint, *good_cols, wkb[good].tolist(),
                    strict=True))
    key_idx = [columns.index(k) for k in prep.key]
    for i in np.flatnonzero(~ok).tolist():
        # A rejected row is staged with its key alone: a snapshot must not retire a record
        # because this delivery of it was bad.
        row = [None] * len(columns)
        for j in key_idx:
            row[j] = values[j][i]
        rows.append((lo + i + 1, True, None, *row))
    return rows


def _stage(cur: psycopg.Cursor, prep: Prepared, chunk: Chunk) -> None:
    """The chunk into a fresh staging table (the previous chunk's dropped)."""
    cols = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(prep.spec.columns[c].type)) for c in chunk.columns)
    # Types come from the catalog (format_type), never from the input. ON COMMIT DROP: a staging
    # table never outlives its run, whatever happens to the process.
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(STAGE)))
    cur.execute(sql.SQL("CREATE TEMP TABLE {} (row_no integer NOT NULL, rejected boolean NOT NULL, {} text, {})"
                        " ON COMMIT DROP").format(sql.Identifier(STAGE), sql.Identifier(HINT), cols))
    copy_stmt = sql.SQL("COPY {} (row_no, rejected, {}, {}) FROM STDIN").format(
        sql.Identifier(STAGE), sql.Identifier(HINT), sql.SQL(", ").join(map(sql.Identifier, chunk.columns)))
    with cur.copy(copy_stmt) as copy:
        for row in chunk.rows:
            copy.write_row(row)


def _exec(cur: psycopg.Cursor, query, params=None) -> None:
    """Execute, logging how long each step took (logger "etl", level DEBUG)."""
    started = time.perf_counter()
    cur.execute(query, params)
    if log.isEnabledFor(logging.DEBUG):
        text = query.as_string(cur) if isinstance(query, sql.Composable) else query
        log.debug("%.3fs %s", time.perf_counter() - started, " ".join(text.split())[:100])


def _judge_in_database(cur: psycopg.Cursor, prep: Prepared, source: Source, columns: list[str]) -> list[Problem]:
    """Commune, province and the table's own CHECK rules, decided by PostGIS on the staged rows."""
    assign = prep.assign
    spec = prep.spec
    names = {"stage": sql.Identifier(STAGE), "geom": sql.Identifier(spec.geometry_column),
             "commune": sql.Identifier(COMMUNE), "communes": sql.Identifier(COMMUNES_TABLE),
             "hint": sql.Identifier(HINT)}
    params = {"tolerance": source.tolerance_m}
    problems: list[Problem] = []
    # Statistics for what the plans join and filter on (and the row count); the geometry's, the
    # costliest to gather, would steer no plan here.
    _exec(cur, sql.SQL("ANALYZE {} ({})").format(names["stage"], sql.SQL(", ").join(
        map(sql.Identifier, dict.fromkeys(["row_no", "rejected", *prep.key])))))
    _exec(cur, sql.SQL("DROP TABLE IF EXISTS {}").format(names["communes"]))
    tol = f"{source.tolerance_m:g} m"
    if COMMUNE in spec.columns:
        if assign:
            _exec(cur, ASSIGN_COMMUNE.format(**names), params)
            _exec(cur, sql.SQL("CREATE UNIQUE INDEX ON {} (row_no)").format(names["communes"]))
            _exec(cur, sql.SQL("ANALYZE {}").format(names["communes"]))
            _exec(cur, ASSIGN_NEAREST.format(**names), params)
            _exec(cur, OUTSIDE.format(**names))
        else:
            _exec(cur, CHECK_KNOWN_COMMUNE.format(**names))
            for row_no, code in cur.fetchall():
                problems.append(Problem(row_no - 1, COMMUNE, f"Mã xã {code!r} không tồn tại.",
                                        f"Commune code {code!r} does not exist."))
            _exec(cur, OUTSIDE_NO_COMMUNE.format(**names), params)
    else:
        _exec(cur, OUTSIDE_NO_COMMUNE.format(**names), params)
    for row_no, distance in cur.fetchall():
        problems.append(Problem(
            row_no - 1, spec.geometry_column,
            f"Vị trí nằm ngoài tỉnh {distance:.0f} m (cho phép {tol}).",
            f"Location is {distance:.0f} m outside the province (tolerance {tol})."))
    _mark(cur, problems)
    staged = set(columns)
    for check in spec.checks:
        if not set(check.columns) <= staged:
            continue
        # The expression is the table's own CHECK as the catalog prints it, evaluated on staging
        # rows of the same columns: it is never built from input. NULL passes, as in a CHECK.
        _exec(cur, sql.SQL("SELECT row_no FROM {} WHERE NOT rejected AND NOT ({})").format(
            names["stage"], sql.SQL(check.expression)))
        found = [Problem(r[0] - 1, ",".join(check.columns),
                         f"Vi phạm quy tắc {check.name}: {check.expression}.",
                         f"Breaks rule {check.name}: {check.expression}.") for r in cur.fetchall()]
        _mark(cur, found)
        problems += found
    return problems


def _mark(cur: psycopg.Cursor, problems: list[Problem]) -> None:
    if problems:
        _exec(cur, sql.SQL("UPDATE {} SET rejected = true WHERE row_no = ANY(%s)").format(sql.Identifier(STAGE)),
                    ([p.row + 1 for p in problems],))


def _upsert(cur: psycopg.Cursor, prep: Prepared, columns: list[str]) -> tuple[int, int, int]:
    """(inserted, updated, unchanged) of the staged chunk. Existing keys are updated only where a
    value differs, so an unchanged row keeps its tuple and makes no history version; new keys are
    inserted in input order. Two plain statements rather than INSERT ... ON CONFLICT: speculative
    insertion doubles the cost of a bulk load, and the layer's advisory lock keeps other ETL runs
    out meanwhile (a concurrent writer of the same key makes the run fail, not corrupt)."""
    names = _upsert_names(prep, columns)
    _exec(cur, sql.SQL("UPDATE {target} t SET {sets} FROM {stage} s"
                       " WHERE NOT s.rejected AND {match} AND ({old}) IS DISTINCT FROM ({new})").format(**names))
    updated = cur.rowcount
    _exec(cur, sql.SQL("INSERT INTO {target} ({cols}) SELECT {values} FROM {stage} s"
                       " WHERE NOT s.rejected AND NOT EXISTS (SELECT 1 FROM {target} t WHERE {match})"
                       " ORDER BY s.row_no").format(**names))
    inserted = cur.rowcount
    _exec(cur, sql.SQL("SELECT count(*) FROM {} WHERE NOT rejected").format(sql.Identifier(STAGE)))
    return inserted, updated, one(cur)[0] - inserted - updated


def _upsert_names(prep: Prepared, columns: list[str]) -> dict[str, sql.Composable]:
    staged = [c for c in columns if c != SURROGATE]
    changeable = [c for c in staged if c not in prep.key]
    # With commune assignment the commune is the hint or comes from its own table.
    commune = COMMUNE_VALUE.format(commune=sql.Identifier(COMMUNE), hint=sql.Identifier(HINT),
                                   communes=sql.Identifier(COMMUNES_TABLE))
    value = {c: commune if (prep.assign and c == COMMUNE) else sql.SQL("s.{}").format(sql.Identifier(c))
             for c in staged}
    return {
        "target": sql.Identifier(prep.spec.table), "stage": sql.Identifier(STAGE),
        "cols": sql.SQL(", ").join(map(sql.Identifier, staged)),
        "values": sql.SQL(", ").join(value[c] for c in staged),
        "sets": sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(c), value[c]) for c in changeable),
        "old": sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in changeable),
        "new": sql.SQL(", ").join(value[c] for c in changeable),
        "match": _key_match(prep),
    }


def _key_match(prep: Prepared) -> sql.Composable:
    """The layer's row t and the staged row s have the same natural key."""
    return sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in prep.key)


def _keep_keys(cur: psycopg.Cursor, prep: Prepared, first: bool) -> None:
    """A snapshot retires what no chunk named: each chunk's keys (rejected rows' too) kept aside."""
    keys = sql.SQL(", ").join(map(sql.Identifier, prep.key))
    if first:
        _exec(cur, sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {}").format(
            sql.Identifier(KEYS_TABLE), keys, sql.Identifier(STAGE)))
    else:
        _exec(cur, sql.SQL("INSERT INTO {} SELECT {} FROM {}").format(sql.Identifier(KEYS_TABLE), keys,
                                                                       sql.Identifier(STAGE)))


def _retire(cur: psycopg.Cursor, prep: Prepared, source: Source) -> int:
    """Only this source's rows: another source's records are not ours to retire. Keys staged from
    rejected rows count as present."""
    _exec(cur, sql.SQL("ANALYZE {}").format(sql.Identifier(KEYS_TABLE)))
    _exec(cur, sql.SQL("DELETE FROM {target} t WHERE t.{prov} = %s"
                       " AND NOT EXISTS (SELECT 1 FROM {keys} s WHERE {match})").format(
        target=sql.Identifier(prep.spec.table), prov=sql.Identifier(prep.spec.provenance),
        keys=sql.Identifier(KEYS_TABLE), match=_key_match(prep)), (source.provenance,))
    return cur.rowcount


def _write_problems(cur: psycopg.Cursor, run_id: int, data: Extract, rejects: list[Problem],
                    repairs: list[Problem]) -> None:
    with cur.copy("COPY etl_rejects (run_id, row_no, row_data, field, reason_vi, reason_en) FROM STDIN") as copy:
        for p in rejects:
            copy.write_row((run_id, p.row + 1, _row_data(data, p.row), p.field, p.vi, p.en))
    with cur.copy("COPY etl_repairs (run_id, row_no, field, reason_vi, reason_en) FROM STDIN") as copy:
        for p in repairs:
            copy.write_row((run_id, p.row + 1, p.field, p.vi, p.en))


def _lock(conn: psycopg.Connection, table: str) -> None:
    conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, zlib.crc32(table.encode()) & 0x7FFFFFFF))


def _unlock(conn: psycopg.Connection, table: str) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, zlib.crc32(table.encode()) & 0x7FFFFFFF))


def run_source(url: str, registry: Registry, source: Source, *, path: Path | None = None, dry_run: bool = False,
               progress: Callable[[int], AbstractContextManager[Callable[[int], None]]] | None = None,
               actor: str | None = None) -> RunResult:
    """Run one source (one file of it, for a drop directory) and return what happened. The audit
    trail names `actor` (who asked for the run, e.g. a steward's re-run) or else the source.

    `progress(total)`, when given, is a context manager factory yielding a callable that
    advances by a number of rows (click.progressbar fits)."""
    started = time.monotonic()
    table = layer_table(registry, source.layer)
    with psycopg.connect(url, autocommit=True, application_name=APPLICATION) as conn:
        data: Extract | None = None
        try:
            data = extract(source, path)
            prep = prepare(conn, source, table, data)
            read = time.monotonic() - started
        except EtlError as exc:
            if not dry_run:
                conn.execute(REFUSED_RUN, (source.name, source.layer, data.checksum if data else None,
                                           len(data) if data else 0, f"{exc.message_vi}\n{exc.message_en}",
                                           Jsonb(source.request) if source.request else None))
            raise
        _lock(conn, table)
        try:
            run_id = None
            if not dry_run:
                request = Jsonb(source.request) if source.request else None
                run_id = one(conn.execute(START_RUN, (source.name, source.layer, data.checksum, request)))[0]
                conn.execute(MARK_STALE, (source.layer, run_id))
            try:
                result = _load(conn, prep, source, run_id, dry_run, progress, actor or f"etl:{source.name}")
            except BaseException as exc:
                if run_id is not None and not conn.closed and not isinstance(exc, KeyboardInterrupt):
                    message = (f"{exc.message_vi}\n{exc.message_en}" if isinstance(exc, EtlError)
                               else f"Lỗi / error: {exc}")
                    conn.execute(FAIL_RUN, (message[:2000], run_id))
                raise
        finally:
            if not conn.closed:
                _unlock(conn, table)
    result.seconds = time.monotonic() - started
    result.timings = {"read": read, **result.timings}
    return result


def _load(conn: psycopg.Connection, prep: Prepared, source: Source, run_id: int | None, dry_run: bool,
          progress, actor: str) -> RunResult:
    n = len(prep.extract)
    result = RunResult(run_id, source.name, source.layer, "running", read=n, dry_run=dry_run)
    problems: list[Problem] = []
    repairs: list[Problem] = []
    with conn.transaction() as tx, conn.cursor() as cur:
        set_actor(cur, actor)  # audit trail (0019); the run itself is in the rows' etl_run
        if run_id is not None:
            # The history triggers name the run that made each version.
            cur.execute("SELECT set_config('iocgis.etl_run', %s, true)", (str(run_id),))
        # Compiling each big statement costs more than it saves on these simple row-by-row plans.
        cur.execute("SET LOCAL jit = off")
        # The staging tables live in this session's own buffers (8 MB by default, settable before
        # the session's first temporary table): room for all of them, so that the passes over the
        # staged rows do not write them out and read them back each time. The upsert sorts and
        # hashes the whole staging table (~300 bytes a row): in memory rather than in temp files.
        size = min(n, CHUNK)
        cur.execute("SELECT set_config('temp_buffers', %s, true)", (f"{min(2048, 8 + size // 2000)}MB",))
        cur.execute("SELECT set_config('work_mem', %s, true)", (f"{min(512, 16 + size // 3000)}MB",))
        _exec(cur, "SELECT count(*) FROM admin_units WHERE level = 'commune' AND valid_to IS NULL AND geom IS NOT NULL")
        if one(cur)[0] == 0:
            raise EtlError("Chưa có ranh giới xã trong CSDL: nạp ranh giới trước (iocgis demo load).",
                           "No commune boundaries in the database: load them first (iocgis demo load).")
        boundaries = commune_boundaries(cur) if prep.assign else None
        clock = result.timings = dict.fromkeys(("wait for checks", "stage", "judge", "upsert", "check"), 0.0)
        with progress(n) if progress is not None else nullcontext(None) as advance:
            # Chunk by chunk, the next one checked by a thread while this one is loaded.
            for chunk in _timed(ahead(_chunks(prep, source, boundaries, CHUNK)), clock, "wait for checks"):
                clock["check"] += chunk.seconds
                with _clocked(clock, "stage"):
                    _stage(cur, prep, chunk)
                with _clocked(clock, "judge"):
                    problems += chunk.checked.rejects + _judge_in_database(cur, prep, source, chunk.columns)
                with _clocked(clock, "upsert"):
                    inserted, updated, unchanged = _upsert(cur, prep, chunk.columns)
                result.inserted += inserted
                result.updated += updated
                result.unchanged += unchanged
                if source.mode == "snapshot":
                    _keep_keys(cur, prep, first=chunk.lo == 0)
                checked = chunk.checked
                repairs += checked.repairs
                result.repaired += len({p.row for p in checked.repairs if checked.ok[p.row - chunk.lo]})
                if advance is not None:
                    advance(len(checked.ok))
        finishing = time.perf_counter()
        if source.mode == "snapshot":
            result.retired = _retire(cur, prep, source)
        result.rejected = len({p.row for p in problems})
        result.status = "succeeded" if result.changed else "unchanged"
        result.message = ("Không có thay đổi nào so với dữ liệu hiện có. / Nothing changed."
                          if result.status == "unchanged" else "")
        if dry_run:
            result.status = "dry-run"
            result.rejects = [{"row": p.row + 1, "field": p.field, "reason_vi": p.vi, "reason_en": p.en}
                              for p in sorted(problems, key=lambda p: p.row)]
            # Everything was done for real inside the transaction, so the counts are exact; none of it stays.
            raise psycopg.Rollback(tx)
        assert run_id is not None   # a run that writes was recorded in etl_runs when it started
        _write_problems(cur, run_id, prep.extract, problems, repairs)
        cur.execute(FINISH_RUN, {"status": result.status, "read": n, "inserted": result.inserted,
                                 "updated": result.updated, "unchanged": result.unchanged,
                                 "repaired": result.repaired, "rejected": result.rejected,
                                 "retired": result.retired, "message": result.message or None, "id": run_id})
    clock["finish"] = time.perf_counter() - finishing
    return result


def _timed(items: Generator, clock: dict[str, float], name: str) -> Iterator:
    """`items`, the time spent waiting for each added to clock[name]."""
    try:
        while True:
            with _clocked(clock, name):
                item = next(items, None)
            if item is None:
                return
            yield item
    finally:
        items.close()   # stops the checking thread at once when the run fails


@contextmanager
def _clocked(clock: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        clock[name] = clock.get(name, 0.0) + time.perf_counter() - started
