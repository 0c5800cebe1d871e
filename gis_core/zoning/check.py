"""Choosing what to check and handing it to the SQL of migrations 0011, 0017, 0020 and 0030.

Stored permits are checked by id in chunks: each chunk is one set-based statement
(`zoning_check_permits`), so a progress bar can move and two connections can share the work, but
nothing ever loops over permits in Python. A proposal (a footprint with no permit yet) goes
through the same `zoning_evaluate` as a one-element set.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
import shapely
from psycopg.rows import dict_row
from shapely.geometry.base import BaseGeometry

from ..db import connect
from ..errors import InvalidParameter, NotFound

CHUNK = 5_000

# In spatial order (PostGIS sorts geometries along a space-filling curve): a chunk's footprints
# then share their zones, and zoning_check_permits tests each zone's polygon against them in a run.
SELECT_ALL = "SELECT id FROM building_permits ORDER BY geom, id"
SELECT_SINCE = "SELECT id FROM building_permits WHERE applied_on >= %s ORDER BY geom, id"
SELECT_NUMBERS = "SELECT id, permit_no FROM building_permits WHERE permit_no = ANY (%s) ORDER BY geom, id"
CHECK_CHUNK = "SELECT verdict, n FROM zoning_check_permits(%s, %s)"

EVALUATE_PROPOSAL = """
SELECT e.verdict, e.decision_nos, e.zones, e.overlays, e.reasons
FROM (SELECT ST_SetSRID(ST_GeomFromWKB(%(wkb)s), 4326) AS g) f
CROSS JOIN LATERAL zoning_evaluate(ARRAY[ROW(
  0, f.g, %(use)s, %(floors)s, %(height)s,
  coalesce(%(footprint)s::numeric, round(ST_Area(f.g::geography)::numeric, 2)), %(parcel)s,
  %(applied)s)::zoning_subject], %(sliver)s) e
"""
KNOWN_USES = "SELECT code FROM zoning_uses"


def permit_ids(conn: psycopg.Connection, *, all_permits: bool = False, since: dt.date | None = None,
               numbers: Sequence[str] = ()) -> list[int]:
    """Ids of the permits asked for: all, applied for since a date, or by permit number."""
    if sum((all_permits, since is not None, bool(numbers))) != 1:
        raise InvalidParameter("Chọn đúng một: tất cả, từ ngày, hoặc số giấy phép.",
                               "Choose exactly one of: all, since a date, or permit numbers.")
    if all_permits:
        return [r[0] for r in conn.execute(SELECT_ALL)]
    if since is not None:
        return [r[0] for r in conn.execute(SELECT_SINCE, (since,))]
    rows = conn.execute(SELECT_NUMBERS, (list(numbers),)).fetchall()
    missing = sorted(set(numbers) - {r[1] for r in rows})
    if missing:
        raise NotFound(f"Không có giấy phép số {', '.join(missing)}.", f"No permit numbered {', '.join(missing)}.")
    return [r[0] for r in rows]


def chunks(ids: Sequence[int], size: int = CHUNK) -> list[list[int]]:
    return [list(ids[i:i + size]) for i in range(0, len(ids), size)]


def check_ids(url: str, ids: Sequence[int], *, sliver_m2: float | None = None, chunk: int = CHUNK,
              workers: int = 1, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Check and store the permits `ids`; {verdict: count}. Each chunk commits on its own; each
    worker keeps one connection for all its chunks (a connection costs more than a small chunk)."""
    totals: Counter[str] = Counter()
    parts = chunks(ids, chunk)
    local = threading.local()
    opened: list[psycopg.Connection] = []
    lock = threading.Lock()

    def check_chunk(part: list[int]) -> dict[str, int]:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = connect(url, autocommit=True)
            # Stored results are recomputed by any later check: a crash may lose the last chunks'
            # rows (never half a row), so no chunk waits for its WAL to reach the disk.
            conn.execute("SET synchronous_commit = off")
            with lock:
                opened.append(conn)
        return dict(conn.execute(CHECK_CHUNK, (part, sliver_m2)).fetchall())

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [(len(p), pool.submit(check_chunk, p)) for p in parts]
            for size, future in futures:
                totals.update(future.result())
                if progress:
                    progress(size)
    finally:
        for conn in opened:
            conn.close()
    return dict(totals)


def check_permits(url: str, *, all_permits: bool = False, since: dt.date | None = None,
                  numbers: Sequence[str] = (), sliver_m2: float | None = None, chunk: int = CHUNK,
                  workers: int = 1) -> dict[str, int]:
    with connect(url) as conn:
        ids = permit_ids(conn, all_permits=all_permits, since=since, numbers=numbers)
    return check_ids(url, ids, sliver_m2=sliver_m2, chunk=chunk, workers=workers)


@dataclass(frozen=True)
class Proposal:
    """What a planner knows about a building that has no permit yet."""

    footprint: BaseGeometry            # EPSG:4326, from footprint.parse_footprint
    intended_use: str
    floors: int
    height_m: float
    parcel_area_m2: float | None = None
    footprint_area_m2: float | None = None   # measured from the footprint when not given
    applied_on: dt.date | None = None        # today when not given


def _number(value, name: str, low: float, high: float, integer: bool = False):
    if value is None or value == "":
        return None
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{name} phải là một số, không phải {value!r}.",
                               f"{name} must be a number, not {value!r}.") from None
    if integer and float(value) != number:
        raise InvalidParameter(f"{name} phải là số nguyên.", f"{name} must be a whole number.")
    if not low <= number <= high:
        raise InvalidParameter(f"{name} phải trong khoảng {low:g}–{high:g}.",
                               f"{name} must be within {low:g}-{high:g}.")
    return number


def proposal_from_inputs(conn: psycopg.Connection, footprint: BaseGeometry, inputs: dict) -> Proposal:
    """Validate the attributes of a proposal (from the process or the page)."""
    use = inputs.get("intended_use")
    known = {r[0] for r in conn.execute(KNOWN_USES)}
    if use not in known:
        raise InvalidParameter(f"Mục đích sử dụng {use!r} không có trong danh mục ({', '.join(sorted(known))}).",
                               f"Unknown intended use {use!r} (one of {', '.join(sorted(known))}).")
    floors = _number(inputs.get("floors"), "floors", 1, 100, integer=True)
    height = _number(inputs.get("height_m"), "height_m", 0.1, 399)
    if floors is None or height is None:
        raise InvalidParameter("Cần số tầng (floors) và chiều cao (height_m).", "floors and height_m are required.")
    applied = inputs.get("applied_on")
    if applied:
        try:
            applied = dt.date.fromisoformat(str(applied))
        except ValueError:
            raise InvalidParameter(f"applied_on phải là ngày dạng YYYY-MM-DD, không phải {applied!r}.",
                                   f"applied_on must be a YYYY-MM-DD date, not {applied!r}.") from None
    return Proposal(footprint, str(use), floors, height,
                    parcel_area_m2=_number(inputs.get("parcel_area_m2"), "parcel_area_m2", 0.01, 1e7),
                    footprint_area_m2=_number(inputs.get("footprint_area_m2"), "footprint_area_m2", 0.01, 1e6),
                    applied_on=applied or None)


def check_footprint(conn: psycopg.Connection, proposal: Proposal, sliver_m2: float | None = None) -> dict:
    """The verdict for a proposal, computed and not stored."""
    params = {
        "wkb": shapely.to_wkb(proposal.footprint), "use": proposal.intended_use, "floors": proposal.floors,
        "height": proposal.height_m, "footprint": proposal.footprint_area_m2, "parcel": proposal.parcel_area_m2,
        "applied": proposal.applied_on or dt.date.today(), "sliver": sliver_m2,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(EVALUATE_PROPOSAL, params).fetchone()
    assert row is not None
    return {**row, "applied_on": params["applied"].isoformat()}


def verdict_counts(results: Iterable[dict]) -> dict[str, int]:
    return dict(Counter(r["verdict"] for r in results))
