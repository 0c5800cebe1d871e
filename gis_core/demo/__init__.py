"""The demo province: Lào Cai's real boundaries and deterministic generated layers.

`load_demo` puts into the database, in one transaction:

- `admin_units`: the province (code 15) and its 99 communes after the 1 July 2025 reform, from the
  simplified copy of the open "vietnamese-provinces-database" (MIT) in data/laocai (see SOURCE.md
  there). Former districts are not loaded: there is no geometry for them.
- generated layers, every row with source 'generated:demo', the same on every run (fixed seeds):
  land-use zones and building permits (about 12 % of them breaking a zone rule), schools, health
  facilities, cameras, a year of incidents ending now, eight indicators over 24 months, and two
  rasters (DEM and landslide hazard classes) written as GeoTIFFs under settings.raster_dir and
  registered in `rasters`.

`scale` multiplies the permits and incidents (scale 100: a million incidents); the facilities, the
zones and the indicators do not grow. A second call at the same scale returns {} after a few
counts; `force=True` or another scale deletes every generated row and loads again. Real rows
(another source) are never deleted; boundaries loaded from another source are not overwritten.

Time-dependent values (incident times, permit dates, camera heartbeats, indicator months) are
placed relative to the moment of loading, so two loads on the same day differ only in those
offsets' anchor, not in what was drawn.
"""

from __future__ import annotations

import datetime as dt
import os
import zlib
from pathlib import Path

import numpy as np
import psycopg

from ..audit import set_actor
from ..errors import InvalidParameter
from ..settings import Settings
from ..text import unaccent
from . import store
from .boundaries import PROVINCE_CODE, SOURCE, VALID_FROM, Commune, Unit, read_units
from .facilities import generate_cameras, generate_clinics, generate_schools
from .geo import Metric, wkb_hex
from .incidents import generate_incidents
from .indicators import INDICATORS, generate_indicator_values
from .planning import generate_permits, generate_zones, zone_rows
from .terrain import RESOLUTION, RasterInfo, write_rasters

__all__ = ["load_demo", "GENERATED", "INCIDENTS_PER_SCALE", "PERMITS_PER_SCALE"]

GENERATED = store.GENERATED
SEED = 20250701                     # the day the two-tier government began
INCIDENTS_PER_SCALE = 10_000
PERMITS_PER_SCALE = 2_000
CHUNK_UNITS = 10                    # scale units generated per chunk (100,000 incidents)
RASTER_NAMES = ("laocai_dem", "laocai_landslide_hazard")
LOCK_KEY = 7_240_616                # advisory lock: two loaders never interleave
VN_TZ = dt.timezone(dt.timedelta(hours=7))


def _rng(part: str) -> np.random.Generator:
    """One independent stream per layer, so changing one layer's draws leaves the others alone.
    crc32 rather than hash(): string hashes change from one Python process to the next."""
    return np.random.default_rng([SEED, zlib.crc32(part.encode())])


def load_demo(conn: psycopg.Connection, settings: Settings, scale: int = 1, force: bool = False) -> dict[str, int]:
    """Load the demo province; return {table: rows loaded}, or {} if it is already there at this scale."""
    if scale < 1:
        raise InvalidParameter("Hệ số nhân phải từ 1 trở lên.", "scale must be 1 or more.")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    written: list[RasterInfo] = []
    suffix = f".tmp{os.getpid()}"
    raster_dir = settings.raster_dir.resolve()
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            set_actor(cur, "demo:load")   # the audit trail says these rows are the demo's
            province, communes = read_units(settings.data_dir)
            before = store.state(cur, PROVINCE_CODE)
            if not force and before.loaded(len(communes), INCIDENTS_PER_SCALE * scale):
                if before.rasters_present(RASTER_NAMES, raster_dir):
                    result: dict[str, int] = {}
                else:
                    # Loaded, but the raster files are gone (a fresh var/ directory): redraw only them.
                    written += write_rasters(_rng("terrain"), raster_dir,
                                             [province.geom, *(c.geom for c in communes)], suffix)
                    result = {"rasters": _register_rasters(cur, written, suffix)}
            else:
                result = _load_all(cur, province, communes, scale, now, raster_dir, suffix, written)
                store.analyze(cur)
    except BaseException:
        for info in written:
            info.path.unlink(missing_ok=True)
        raise
    # Committed: move the rasters into place. A crash before this leaves only *.tmp* files behind,
    # and the rows already name the final paths, which the next load then finds missing and redraws.
    for info in written:
        os.replace(info.path, _final(info.path, suffix))
    return result


def _final(path: Path, suffix: str) -> Path:
    return path.with_name(path.name.replace(suffix, ""))


def _register_rasters(cur: psycopg.Cursor, infos: list[RasterInfo], suffix: str) -> int:
    n = 0
    for info in infos:
        minx, miny, maxx, maxy = info.bounds
        cur.execute(store.UPSERT_RASTER, dict(
            name=info.name, title_vi=info.title_vi, title_en=info.title_en, kind=info.kind,
            path=str(_final(info.path, suffix)), width=info.width, height=info.height, dtype=info.dtype,
            nodata=info.nodata, resolution=RESOLUTION, unit=info.unit, source=GENERATED,
            minx=minx, miny=miny, maxx=maxx, maxy=maxy))
        n += cur.rowcount
    return n


def _chunks(scale: int) -> list[tuple[int, int]]:
    """(chunk number, scale units in it): ten units a chunk, so scale 1 and 10 are one chunk each."""
    return [(k, min(CHUNK_UNITS, scale - k * CHUNK_UNITS)) for k in range(-(-scale // CHUNK_UNITS))]


def _unit_row(u: Unit, level: str, parent: str | None) -> tuple:
    return (u.code, parent, level, u.kind, u.name, u.name_en or None, u.full_name, u.full_name_en or None,
            unaccent(u.name), round(u.area_km2, 3), wkb_hex(u.geom))


def _load_all(cur: psycopg.Cursor, province: Unit, communes: list[Commune], scale: int, now: dt.datetime,
              raster_dir: Path, suffix: str, written: list[RasterInfo]) -> dict[str, int]:
    today = now.astimezone(VN_TZ).date()
    metric = Metric()
    counts: dict[str, int] = {}
    store.clear_generated(cur)

    units = [_unit_row(province, "province", None)] + [_unit_row(c, "commune", PROVINCE_CODE) for c in communes]
    counts["admin_units"] = store.load(cur, "demo_stage_units", units, store.INSERT_UNITS,
                                       {"valid_from": dt.date.fromisoformat(VALID_FROM), "source": SOURCE})
    gen = {"source": GENERATED}

    plans, zones = generate_zones(_rng("zones"), communes, metric)
    counts["landuse_zones"] = store.load(cur, "demo_stage_zones", zone_rows(plans, zones), store.INSERT_ZONES, gen)
    # Permits and incidents grow with the scale: drawn and copied a chunk at a time so that memory
    # stays flat (scale 100 is a million incidents), each chunk with its own stream.
    store.create_stage(cur, "demo_stage_permits")
    for chunk, scale_units in _chunks(scale):
        rows = generate_permits(_rng(f"permits:{chunk}"), zones, PERMITS_PER_SCALE * scale_units, metric, today,
                                chunk)
        store.copy_rows(cur, "demo_stage_permits", rows)
    counts["building_permits"] = store.move(cur, store.INSERT_PERMITS, gen)

    counts["schools"] = store.load(cur, "demo_stage_schools", generate_schools(_rng("schools"), communes),
                                   store.INSERT_SCHOOLS, gen)
    counts["clinics"] = store.load(cur, "demo_stage_clinics", generate_clinics(_rng("clinics"), communes),
                                   store.INSERT_CLINICS, gen)
    cameras = generate_cameras(_rng("cameras"), communes, province.geom, now)
    counts["cameras"] = store.load(cur, "demo_stage_cameras", cameras, store.INSERT_CAMERAS, gen)
    store.create_stage(cur, "demo_stage_incidents")
    for chunk, scale_units in _chunks(scale):
        rows = generate_incidents(_rng(f"incidents:{chunk}"), communes, cameras, INCIDENTS_PER_SCALE * scale_units,
                                  now, chunk)
        store.copy_rows(cur, "demo_stage_incidents", rows)
    counts["incidents"] = store.move(cur, store.INSERT_INCIDENTS, gen)

    n = 0
    for definition in INDICATORS:
        cur.execute(store.UPSERT_INDICATOR, (*definition, GENERATED))
        n += cur.rowcount
    counts["indicators"] = n
    values = generate_indicator_values(_rng("indicators"), communes, today)
    counts["indicator_values"] = store.load(cur, "demo_stage_values", values, store.INSERT_VALUES, gen)

    written += write_rasters(_rng("terrain"), raster_dir, [province.geom, *(c.geom for c in communes)], suffix)
    counts["rasters"] = _register_rasters(cur, written, suffix)
    return counts
