"""Overlays derived from data already in the database, for provinces (like the demo) that have no
surveyed overlay layers yet: landslide hazard areas from the hazard class raster, river
corridors along the main rivers, and the plans behind the zones.

Derived rows carry source 'derived:<what>' and are replaced as a whole on every run; overlays
loaded from elsewhere are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg
import rasterio
import rasterio.features
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, shape

from ..errors import NotFound
from ..rows import one

HAZARD_SOURCE = "derived:hazard_raster"
RIVER_SOURCE = "derived:rivers"
METRIC_CRS = "EPSG:32648"   # UTM 48N covers the whole province


@dataclass(frozen=True)
class HazardRule:
    """What a hazard class means for building: the effect and, for 'restrict', the limits."""

    min_class: int
    effect: str
    name_vi: str
    name_en: str
    max_height_m: float | None = None
    max_floors: int | None = None


# Class 4 (very high) forbids building; class 3 (high) lets low buildings through after a
# geotechnical review is replaced by a cap: two floors, 8 m.
HAZARD_RULES = (
    HazardRule(4, "forbid", "vùng nguy cơ sạt lở rất cao", "very high landslide hazard area"),
    HazardRule(3, "restrict", "vùng nguy cơ sạt lở cao", "high landslide hazard area", 8.0, 2),
)
RIVER_CORRIDOR_M = 50.0     # hành lang bảo vệ sông: no building within this distance of the bank line

DELETE_SOURCE = "DELETE FROM zoning_overlays WHERE source = %s"
INSERT_OVERLAY = """
INSERT INTO zoning_overlays (code, kind, name_vi, name_en, effect, max_height_m, max_floors, hazard_class,
                             valid_from, source, geom)
VALUES (%(code)s, %(kind)s, %(name_vi)s, %(name_en)s, %(effect)s, %(max_height_m)s, %(max_floors)s,
        %(hazard_class)s, %(valid_from)s, %(source)s,
        ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_GeomFromWKB(%(wkb)s, 4326)), 3)))
"""
HAZARD_RASTER = "SELECT path, nodata FROM rasters WHERE kind = 'hazard' ORDER BY name LIMIT 1"
EARLIEST_PLAN = "SELECT coalesce(min(valid_from), DATE '2000-01-01') FROM landuse_zones"
SYNC_PLANS = """
INSERT INTO zoning_plans (decision_no, plan_name, decision_date, valid_from, source)
SELECT DISTINCT ON (decision_no) decision_no, plan_name, decision_date, valid_from, 'derived:landuse_zones'
FROM landuse_zones ORDER BY decision_no, valid_from
ON CONFLICT (decision_no) DO NOTHING
"""


def hazard_polygons(path: str, nodata: float | None, rule: HazardRule, upper: int | None) -> list:
    """Polygons of the raster where min_class <= class < upper (every pixel edge kept: exact)."""
    with rasterio.open(path) as ds:
        band = ds.read(1)
        transform = ds.transform
    mask = band >= rule.min_class
    if upper is not None:
        mask &= band < upper
    if nodata is not None:
        mask &= band != nodata
    shapes = rasterio.features.shapes(mask.astype(np.uint8), mask=mask, transform=transform, connectivity=4)
    return [shape(g) for g, value in shapes if value == 1]


def river_corridors() -> list[tuple[str, str, str, object]]:
    """(code, name_vi, name_en, polygon) for the Red and Chảy rivers, buffered in metres."""
    from ..demo.terrain import CHAY_RIVER, RED_RIVER  # the demo's river lines: the only ones we have

    fwd = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    inv = Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
    out = []
    for code, vi, en, coords in (("river-hong", "hành lang bảo vệ sông Hồng", "Red River protection corridor",
                                  RED_RIVER),
                                 ("river-chay", "hành lang bảo vệ sông Chảy", "Chảy River protection corridor",
                                  CHAY_RIVER)):
        xy = np.array(coords, dtype=float)
        x, y = fwd.transform(xy[:, 0], xy[:, 1])
        band = LineString(np.column_stack([x, y])).buffer(RIVER_CORRIDOR_M, quad_segs=4)
        out.append((code, vi, en, shapely.transform(band, lambda c: np.column_stack(inv.transform(c[:, 0], c[:, 1])))))
    return out


def load_overlays(conn: psycopg.Connection, *, hazard: bool = True, rivers: bool = True) -> dict[str, int]:
    """Replace the derived overlays and register the zones' plans; {what: rows}. One transaction."""
    counts: dict[str, int] = {}
    with conn.transaction(), conn.cursor() as cur:
        valid_from = one(cur.execute(EARLIEST_PLAN))[0]
        cur.execute(SYNC_PLANS)
        counts["zoning_plans"] = cur.rowcount
        if hazard:
            row = cur.execute(HAZARD_RASTER).fetchone()
            if row is None:
                raise NotFound("Chưa có bản đồ phân vùng nguy cơ (rasters.kind = 'hazard').",
                               "No hazard raster is registered (rasters.kind = 'hazard').")
            cur.execute(DELETE_SOURCE, (HAZARD_SOURCE,))
            n = 0
            upper = None
            for rule in HAZARD_RULES:
                for i, poly in enumerate(hazard_polygons(row[0], row[1], rule, upper), start=1):
                    cur.execute(INSERT_OVERLAY, dict(
                        code=f"landslide-{rule.min_class}-{i:05d}", kind="landslide_hazard",
                        name_vi=f"{rule.name_vi} (cấp {rule.min_class})",
                        name_en=f"{rule.name_en} (class {rule.min_class})", effect=rule.effect,
                        max_height_m=rule.max_height_m, max_floors=rule.max_floors, hazard_class=rule.min_class,
                        valid_from=valid_from, source=HAZARD_SOURCE, wkb=shapely.to_wkb(poly)))
                    n += 1
                upper = rule.min_class
            counts["landslide_hazard"] = n
        if rivers:
            cur.execute(DELETE_SOURCE, (RIVER_SOURCE,))
            for code, vi, en, poly in river_corridors():
                cur.execute(INSERT_OVERLAY, dict(
                    code=code, kind="river_corridor", name_vi=vi, name_en=en, effect="forbid", max_height_m=None,
                    max_floors=None, hazard_class=None, valid_from=valid_from, source=RIVER_SOURCE,
                    wkb=shapely.to_wkb(poly)))
            counts["river_corridor"] = 2
        cur.execute("ANALYZE zoning_overlays")
    return counts
