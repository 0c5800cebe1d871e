"""Geometry for the generator: sampling inside polygons, and metric work in UTM zone 48N.

Lengths and areas (a 12 x 8 m house, a 400 m block) are built in metres in UTM 48N (EPSG:32648),
which covers the whole province (102°E-108°E) on WGS 84, so no datum shift is involved; results
go back to EPSG:4326 for storage.
"""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

METRIC_CRS = "EPSG:32648"
DECIMALS = 6          # points are stored rounded to 0.000001° (about 0.1 m)


class Metric:
    """Transform geometries and coordinates between EPSG:4326 and UTM 48N metres."""

    def __init__(self) -> None:
        self._fwd = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
        self._inv = Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)

    def xy_to_m(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._fwd.transform(lon, lat)

    def xy_to_deg(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._inv.transform(x, y)

    def to_m(self, geom):
        return shapely.transform(geom, lambda c: np.column_stack(self._fwd.transform(c[:, 0], c[:, 1])))

    def to_deg(self, geom):
        return shapely.transform(geom, lambda c: np.column_stack(self._inv.transform(c[:, 0], c[:, 1])))


def sample_points(geom: BaseGeometry, n: int, rng: np.random.Generator,
                  centre: tuple[float, float] | None = None, sigma_m: float = 0.0,
                  decimals: int = DECIMALS) -> tuple[np.ndarray, np.ndarray]:
    """n points strictly inside `geom` (lon/lat), uniform, or normal around `centre` when sigma_m > 0.

    Rejection sampling, vectorised; coordinates are rounded before the containment test so that
    what is stored is exactly what was tested. A normal cloud whose centre sits near an edge may
    reject most draws, so after a few rounds the rest is drawn uniformly.
    """
    if n <= 0:
        return np.empty(0), np.empty(0)
    shapely.prepare(geom)
    minx, miny, maxx, maxy = geom.bounds
    fill = max(geom.area / max((maxx - minx) * (maxy - miny), 1e-12), 0.02)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    have = 0
    rounds = 0
    while have < n:
        want = n - have
        if centre is not None and sigma_m > 0 and rounds < 6:
            lat0 = centre[1]
            sx = sigma_m / (111_320.0 * np.cos(np.radians(lat0)))
            sy = sigma_m / 110_574.0
            m = int(want * 1.6) + 8
            x = rng.normal(centre[0], sx, m)
            y = rng.normal(centre[1], sy, m)
        else:
            m = int(want / fill * 1.3) + 8
            x = rng.uniform(minx, maxx, m)
            y = rng.uniform(miny, maxy, m)
        x = np.round(x, decimals)
        y = np.round(y, decimals)
        ok = shapely.contains_xy(geom, x, y)
        x, y = x[ok][:want], y[ok][:want]
        xs.append(x)
        ys.append(y)
        have += len(x)
        rounds += 1
    return np.concatenate(xs), np.concatenate(ys)


def rectangles(cx: np.ndarray, cy: np.ndarray, width: np.ndarray, length: np.ndarray,
               angle: np.ndarray) -> np.ndarray:
    """Rotated rectangles (metres) centred on (cx, cy), as an array of shapely Polygons."""
    hw, hl = width / 2.0, length / 2.0
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=float)
    dx = corners[None, :, 0] * hl[:, None]
    dy = corners[None, :, 1] * hw[:, None]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = cx[:, None] + dx * cos - dy * sin
    y = cy[:, None] + dx * sin + dy * cos
    return shapely.polygons(np.stack([x, y], axis=-1))


def polygonal(geom: BaseGeometry, min_area: float = 0.0) -> shapely.MultiPolygon | None:
    """The polygon parts of an overlay result as one valid MultiPolygon, or None if nothing is left."""
    if geom is None or geom.is_empty:
        return None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > min_area]
    if not parts:
        return None
    multi = shapely.MultiPolygon(parts)
    return multi if multi.is_valid else None


def wkb_hex(geom: BaseGeometry) -> str:
    return shapely.to_wkb(geom, hex=True)
