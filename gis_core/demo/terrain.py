"""A synthetic but plausible terrain for Lào Cai: a DEM and a landslide hazard class raster.

Not real elevation data (no open DEM ships with the project). The shape follows the real relief:
the Hoàng Liên Sơn range running north-west to south-east with Fansipan (3,143 m) west of Sa Pa,
the Red River valley from Lào Cai (about 80 m) down to Yên Bái, the Chảy River and Thác Bà lake
in the east, lower hills east of the Red River, the Bắc Hà - Si Ma Cai plateau in the north-east,
and smooth random relief on top. Both rasters are written as Cloud-Optimised GeoTIFFs (tiled,
DEFLATE-compressed, with overviews) in EPSG:4326 at 0.005° (about 500 m).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import shapely
from rasterio.features import geometry_mask
from rasterio.io import MemoryFile
from rasterio.transform import from_origin
from shapely.geometry import LineString

RESOLUTION = 0.005
DEM_NODATA = -9999.0
HAZARD_NODATA = 255
FANSIPAN = (103.7751, 22.3033)

# (lon, lat) vertices; rivers carry their bed elevation (m) at each vertex, the range its crest.
RED_RIVER = ((103.93, 22.53), (103.97, 22.50), (104.05, 22.43), (104.15, 22.35), (104.22, 22.30),
             (104.35, 22.17), (104.47, 22.05), (104.60, 21.93), (104.72, 21.82), (104.82, 21.75),
             (104.88, 21.70), (104.97, 21.62), (105.08, 21.50))
RED_RIVER_Z = np.linspace(80.0, 26.0, len(RED_RIVER))
CHAY_RIVER = ((104.40, 22.70), (104.45, 22.52), (104.53, 22.35), (104.63, 22.22), (104.74, 22.10),
              (104.85, 22.00), (104.95, 21.90), (105.06, 21.82))
CHAY_RIVER_Z = np.linspace(320.0, 58.0, len(CHAY_RIVER))
HOANG_LIEN = ((103.52, 22.75), (103.66, 22.50), FANSIPAN, (103.90, 22.15), (104.02, 21.98),
              (104.16, 21.80), (104.30, 21.62), (104.42, 21.45))
HOANG_LIEN_Z = np.array([2300.0, 2600.0, 2950.0, 2500.0, 2200.0, 2700.0, 2250.0, 1700.0])
KM_PER_DEG = (111.32 * np.cos(np.radians(22.1)), 110.57)   # a local plane in kilometres


@dataclass(frozen=True)
class RasterInfo:
    name: str
    title_vi: str
    title_en: str
    kind: str
    path: Path
    width: int
    height: int
    dtype: str
    nodata: float
    unit: str
    bounds: tuple[float, float, float, float]


def _km(coords) -> np.ndarray:
    a = np.asarray(coords, dtype=float)
    return np.column_stack([a[:, 0] * KM_PER_DEG[0], a[:, 1] * KM_PER_DEG[1]])


def _along(points, line_coords, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (km) from each point to the polyline, and the polyline's value at the nearest spot."""
    line = LineString(_km(line_coords))
    dist = shapely.distance(line, points)
    at = shapely.line_locate_point(line, points)
    vertex_at = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(_km(line_coords), axis=0).T))])
    return dist, np.interp(at, vertex_at, values)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Gaussian-filtered white noise (via FFT), scaled to unit standard deviation."""
    white = rng.standard_normal(shape)
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.fftfreq(shape[1])[None, :]
    kernel = np.exp(-2 * (np.pi * sigma_px) ** 2 * (kx ** 2 + ky ** 2))
    field = np.real(np.fft.ifft2(np.fft.fft2(white) * kernel))
    return (field - field.mean()) / field.std()


def grid(bounds: tuple[float, float, float, float]) -> tuple[float, float, int, int]:
    """Pixel-aligned origin and size covering `bounds` (minx, miny, maxx, maxy)."""
    minx = np.floor(bounds[0] / RESOLUTION) * RESOLUTION
    maxy = np.ceil(bounds[3] / RESOLUTION) * RESOLUTION
    width = int(np.ceil((bounds[2] - minx) / RESOLUTION))
    height = int(np.ceil((maxy - bounds[1]) / RESOLUTION))
    return round(float(minx), 6), round(float(maxy), 6), width, height


def elevation(rng: np.random.Generator, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    shape = lon.shape
    x, y = lon * KM_PER_DEG[0], lat * KM_PER_DEG[1]
    pts = shapely.points(x.ravel(), y.ravel())
    z = 650.0 + 300.0 * _smooth_noise(rng, shape, 9.0) + 110.0 * _smooth_noise(rng, shape, 2.0)
    # East of the Red River the hills are lower, except the Bắc Hà - Si Ma Cai plateau.
    a, b = _km([RED_RIVER[0], RED_RIVER[-1]])
    d = b - a
    side = ((x - a[0]) * d[1] - (y - a[1]) * d[0]) / np.hypot(*d)   # km, > 0 south-west of the river
    east = 1.0 / (1.0 + np.exp(side / 8.0))
    px, py = _km([(104.27, 22.62)])[0]
    plateau = np.exp(-((x - px) ** 2 + (y - py) ** 2) / 18.0 ** 2)
    z = z * (1.0 - 0.5 * east) + 650.0 * plateau
    dist, crest = (v.reshape(shape) for v in _along(pts, HOANG_LIEN, HOANG_LIEN_Z))
    z = z + np.maximum(crest - z, 0.0) * np.exp(-((dist / 7.0) ** 2))
    fx, fy = _km([FANSIPAN])[0]
    z = z + 200.0 * np.exp(-((x - fx) ** 2 + (y - fy) ** 2) / 3.0 ** 2)
    for river, bed, width in ((RED_RIVER, RED_RIVER_Z, 4.0), (CHAY_RIVER, CHAY_RIVER_Z, 3.0)):
        dist, zr = (v.reshape(shape) for v in _along(pts, river, bed))
        z = zr + (z - zr) * (1.0 - np.exp(-((dist / width) ** 2)))
    return np.clip(z, 25.0, 3143.0).astype(np.float32)


def slope_degrees(z: np.ndarray, lat: np.ndarray) -> np.ndarray:
    dy = RESOLUTION * 110_574.0
    dx = RESOLUTION * 111_320.0 * np.cos(np.radians(lat))
    gy, gx = np.gradient(z.astype(float))
    return np.degrees(np.arctan(np.hypot(gx / dx, gy / dy)))


def _write_cog(path: Path, data: np.ndarray, profile: dict, resampling: str) -> None:
    """Write through an in-memory GeoTIFF into a Cloud-Optimised GeoTIFF at `path`."""
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(data, 1)
        with mem.open() as src:
            rasterio.shutil.copy(src, str(path), driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=128,
                                 OVERVIEWS="AUTO", OVERVIEW_RESAMPLING=resampling,
                                 PREDICTOR="YES" if data.dtype.kind == "f" else "NO")


def write_rasters(rng: np.random.Generator, out_dir: Path, geoms, suffix: str) -> list[RasterInfo]:
    """Write the DEM and the hazard classes covering `geoms` (the province and its communes) into
    out_dir, as <name><suffix>.tif (the caller renames them into place once the database agrees)."""
    bounds = shapely.total_bounds(np.array(geoms, dtype=object))
    minx, maxy, width, height = grid(tuple(bounds))
    transform = from_origin(minx, maxy, RESOLUTION, RESOLUTION)
    cols = minx + (np.arange(width) + 0.5) * RESOLUTION
    rows = maxy - (np.arange(height) + 0.5) * RESOLUTION
    lon, lat = np.meshgrid(cols, rows)
    inside = geometry_mask(geoms, out_shape=(height, width), transform=transform, invert=True)
    z = elevation(rng, lon, lat)
    slope = slope_degrees(z, lat)
    # Landslide susceptibility: mostly slope, nudged up on the rainy high ground of the range. At
    # 500 m pixels slopes are smoothed out, so classes are cut at fixed shares of the province
    # (30 % none, 25 % low, 20 % medium, 15 % high, 10 % very high) rather than at degrees.
    score = slope + np.clip((z - 300.0) / 2000.0, 0.0, 1.0) * 3.0 + 1.5 * _smooth_noise(rng, z.shape, 1.5)
    hazard = np.digitize(score, np.quantile(score[inside], [0.3, 0.55, 0.75, 0.9]))
    dem = np.where(inside, z, DEM_NODATA).astype(np.float32)
    classes = np.where(inside, hazard, HAZARD_NODATA).astype(np.uint8)
    out_dir.mkdir(parents=True, exist_ok=True)
    common = dict(driver="GTiff", width=width, height=height, count=1, crs="EPSG:4326", transform=transform)
    extent = (minx, round(maxy - height * RESOLUTION, 6), round(minx + width * RESOLUTION, 6), maxy)
    infos = [
        RasterInfo("laocai_dem", "Mô hình số độ cao tỉnh Lào Cai (dữ liệu mẫu)",
                   "Digital elevation model of Lào Cai (demo data)", "dem",
                   out_dir / f"laocai_dem{suffix}.tif", width, height, "float32", DEM_NODATA, "m", extent),
        RasterInfo("laocai_landslide_hazard", "Phân vùng nguy cơ sạt lở đất tỉnh Lào Cai (dữ liệu mẫu)",
                   "Landslide hazard classes of Lào Cai, 0 none to 4 very high (demo data)", "hazard",
                   out_dir / f"laocai_landslide_hazard{suffix}.tif", width, height, "uint8",
                   float(HAZARD_NODATA), "class 0-4", extent),
    ]
    _write_cog(infos[0].path, dem, {**common, "dtype": "float32", "nodata": DEM_NODATA}, "AVERAGE")
    _write_cog(infos[1].path, classes, {**common, "dtype": "uint8", "nodata": HAZARD_NODATA}, "NEAREST")
    return infos

