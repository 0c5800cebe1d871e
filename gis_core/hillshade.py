"""The offline base map's relief: the DEM from the `rasters` catalog drawn as a tinted hillshade,
one PNG with transparency outside the province, for an image overlay under our own layers.

One image rather than a tile pyramid: the DEM is ~340x320 pixels at 500 m, so even drawn at
twice its resolution the picture is a few hundred kilobytes, cached by the browser for a day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import rasterio
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.transform import Affine, from_bounds
from rasterio.warp import reproject

from .errors import NotFound

DEM_SQL = "SELECT path, ST_XMin(footprint), ST_YMin(footprint), ST_XMax(footprint), ST_YMax(footprint)" \
          " FROM rasters WHERE kind = 'dem' ORDER BY loaded_at DESC, name LIMIT 1"

# Elevation (m) -> colour: valley greens, hill ochres, the high range in browns and near-white.
TINT_STOPS = np.array([0, 200, 600, 1200, 2000, 2800, 3200], dtype=float)
TINT_RGB = np.array([(172, 208, 165), (196, 221, 170), (230, 226, 180), (222, 200, 160),
                     (196, 170, 140), (225, 215, 205), (250, 250, 250)], dtype=float)


@dataclass(frozen=True)
class Relief:
    png: bytes
    bounds: tuple[float, float, float, float]   # west, south, east, north
    width: int
    height: int


def dem_source(conn: psycopg.Connection) -> tuple[Path, tuple[float, float, float, float]]:
    row = conn.execute(DEM_SQL).fetchone()
    if row is None or not Path(row[0]).is_file():
        raise NotFound("Chưa có mô hình số độ cao (DEM) để vẽ địa hình.",
                       "No elevation model (DEM) is loaded to draw the relief from.")
    return Path(row[0]), (row[1], row[2], row[3], row[4])


def hillshade(z: np.ndarray, dx_m: np.ndarray | float, dy_m: float, azimuth: float = 315.0,
              altitude: float = 45.0, exaggeration: float = 2.0) -> np.ndarray:
    """Lambertian shading in [0, 1] (Horn-like central differences), light from the north-west."""
    gy, gx = np.gradient(z)
    dzdx = gx / dx_m * exaggeration
    dzdy = -gy / dy_m * exaggeration          # rows run south, y runs north
    slope = np.arctan(np.hypot(dzdx, dzdy))
    aspect = np.arctan2(dzdy, -dzdx)
    az = np.radians(360.0 - azimuth + 90.0)
    alt = np.radians(altitude)
    shade = np.sin(alt) * np.cos(slope) + np.cos(alt) * np.sin(slope) * np.cos(az - aspect)
    return np.clip(shade, 0.0, 1.0)


def render_relief(path: Path, upsample: int = 2) -> Relief:
    """The DEM at `upsample` times its resolution (bilinear), tinted by height and shaded."""
    with rasterio.open(path) as src:
        height, width = src.height * upsample, src.width * upsample
        z = src.read(1, out_shape=(height, width), resampling=Resampling.bilinear, masked=True)
        west, south, east, north = src.bounds
    lat = np.linspace(north, south, height)[:, None]
    dy = (north - south) / height * 110_574.0
    dx = (east - west) / width * 111_320.0 * np.cos(np.radians(lat))
    png = _png(_colour(z, dx, dy), from_bounds(west, south, east, north, width, height), "EPSG:4326")
    return Relief(png=png, bounds=(west, south, east, north), width=width, height=height)


def _colour(z: np.ma.MaskedArray, dx: np.ndarray | float, dy: float) -> np.ndarray:
    """Heights (masked outside the DEM) to RGBA bands: tinted by height, shaded, clear outside."""
    inside = ~np.ma.getmaskarray(z)
    elev = np.ma.filled(z.astype(float), np.nan)
    # Fill the outside with the mean height so the edge does not cast a false cliff shadow.
    fill = np.nanmean(elev) if inside.any() else 0.0
    elev = np.where(inside, elev, fill)
    shade = hillshade(elev, dx, dy)
    tint = np.stack([np.interp(elev, TINT_STOPS, TINT_RGB[:, i]) for i in range(3)])
    light = 0.45 + 0.75 * shade                  # keep shadows soft: names stay readable on top
    rgb = np.clip(tint * light[None], 0, 255).astype(np.uint8)
    alpha = np.where(inside, 255, 0).astype(np.uint8)[None]
    return np.concatenate([rgb, alpha])


def _png(bands: np.ndarray, transform, crs: str) -> bytes:
    with MemoryFile() as mem:
        # Georeferenced only to keep GDAL quiet; the browser places the image itself.
        with mem.open(driver="PNG", width=bands.shape[2], height=bands.shape[1], count=4, dtype="uint8", crs=crs,
                      transform=transform) as dst:
            dst.write(bands)
        return mem.read()


TILE_SIZE = 256
WEB_MERCATOR_HALF = math.pi * 6378137.0


def relief_tile(path: Path, z: int, x: int, y: int) -> bytes:
    """One 256-pixel WebMercatorQuad tile of the relief (clear where there is no DEM), for map
    widgets that want XYZ tiles, such as pygeoapi's pages. The DEM is reprojected with a pixel of
    margin so that the shading has no seams at tile edges."""
    if not (0 <= z <= 22 and 0 <= x < 2**z and 0 <= y < 2**z):
        raise NotFound(f"Không có ô bản đồ {z}/{x}/{y}.", f"There is no tile {z}/{x}/{y}.")
    size = 2 * WEB_MERCATOR_HALF / 2**z
    pixel = size / TILE_SIZE
    left, top = -WEB_MERCATOR_HALF + x * size, WEB_MERCATOR_HALF - y * size
    n = TILE_SIZE + 2
    transform = Affine(pixel, 0, left - pixel, 0, -pixel, top + pixel)
    heights = np.full((n, n), np.nan, dtype="float32")
    with rasterio.open(path) as src:
        reproject(rasterio.band(src, 1), heights, dst_transform=transform, dst_crs="EPSG:3857",
                  dst_nodata=np.nan, resampling=Resampling.bilinear)
    # A Mercator pixel on the ground is `pixel` metres times cos(latitude), both ways.
    rows_y = top + pixel - (np.arange(n) + 0.5) * pixel
    ground = pixel * np.cos(2 * np.arctan(np.exp(rows_y / 6378137.0)) - math.pi / 2)[:, None]
    bands = _colour(np.ma.masked_invalid(heights), ground, ground)[:, 1:-1, 1:-1]
    return _png(np.ascontiguousarray(bands), transform * Affine.translation(1, 1), "EPSG:3857")
