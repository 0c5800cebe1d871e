"""GeoTIFF in, Cloud-Optimized GeoTIFF out: tiled, compressed, with overviews, written under
settings.raster_dir and registered in the `rasters` catalog in one transaction. The file is written
beside its final name and moved into place only after the catalog row is committed, so a failure
never leaves the catalog pointing at a half-written file."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
import rasterio
from rasterio.crs import CRS
from rasterio.shutil import copy as rio_copy
from rasterio.warp import transform_bounds

from .errors import EtlError

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
KINDS = ("dem", "hazard", "hillshade", "other")

UPSERT = """
INSERT INTO rasters AS r (name, title_vi, title_en, kind, path, crs, width, height, band_count, dtype, nodata,
                          resolution, unit, source, loaded_at, footprint)
VALUES (%(name)s, %(title_vi)s, %(title_en)s, %(kind)s, %(path)s, %(crs)s, %(width)s, %(height)s, %(bands)s,
        %(dtype)s, %(nodata)s, %(resolution)s, %(unit)s, %(source)s, now(),
        ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 4326))
ON CONFLICT (name) DO UPDATE SET
  title_vi = EXCLUDED.title_vi, title_en = EXCLUDED.title_en, kind = EXCLUDED.kind, path = EXCLUDED.path,
  crs = EXCLUDED.crs, width = EXCLUDED.width, height = EXCLUDED.height, band_count = EXCLUDED.band_count,
  dtype = EXCLUDED.dtype, nodata = EXCLUDED.nodata, resolution = EXCLUDED.resolution, unit = EXCLUDED.unit,
  source = EXCLUDED.source, loaded_at = EXCLUDED.loaded_at, footprint = EXCLUDED.footprint
"""


@dataclass(frozen=True)
class RasterLoad:
    name: str
    path: Path
    crs: str
    width: int
    height: int
    overviews: list[int]


def load_raster(conn: psycopg.Connection, raster_dir: Path, name: str, src: Path, *, title_vi: str, title_en: str,
                kind: str = "other", unit: str | None = None, crs: str | None = None,
                source: str | None = None) -> RasterLoad:
    if not NAME.match(name):
        raise EtlError(f"Tên lớp ảnh không hợp lệ: {name!r}.", f"Bad raster name {name!r} (a-z, 0-9, _).")
    if kind not in KINDS:
        raise EtlError(f"Loại ảnh phải là một trong {KINDS}.", f"kind must be one of {KINDS}.")
    src = Path(src)
    if not src.is_file():
        raise EtlError(f"Không tìm thấy tệp {src}.", f"File not found: {src}.")
    raster_dir.mkdir(parents=True, exist_ok=True)
    final = raster_dir / f"{name}.tif"
    tmp = raster_dir / f".{name}.tif.tmp{os.getpid()}"
    try:
        with rasterio.open(src) as ds:
            file_crs = ds.crs
            if crs:
                file_crs = CRS.from_user_input(crs)
            if file_crs is None:
                raise EtlError("Ảnh không ghi hệ tọa độ và không khai báo: dùng --crs.",
                               "The raster has no CRS and none is declared: use --crs.")
            options = {"COMPRESS": "DEFLATE", "BLOCKSIZE": 512, "OVERVIEWS": "AUTO", "BIGTIFF": "IF_SAFER"}
            if ds.crs is None or (crs and ds.crs != file_crs):
                # The COG driver copies the source's georeferencing: assign the declared CRS first.
                with rasterio.MemoryFile() as mem:
                    profile = {**ds.profile, "crs": file_crs, "driver": "GTiff"}
                    with mem.open(**profile) as fixed:
                        fixed.write(ds.read())
                    with mem.open() as fixed:
                        rio_copy(fixed, tmp, driver="COG", **options)
            else:
                rio_copy(ds, tmp, driver="COG", **options)
        with rasterio.open(tmp) as cog:
            minx, miny, maxx, maxy = transform_bounds(cog.crs, "EPSG:4326", *cog.bounds)
            row = dict(name=name, title_vi=title_vi, title_en=title_en, kind=kind, path=str(final),
                       crs=cog.crs.to_string(), width=cog.width, height=cog.height, bands=cog.count,
                       dtype=cog.dtypes[0], nodata=cog.nodata, resolution=abs(cog.res[0]), unit=unit,
                       source=source or f"etl:{src.name}", minx=minx, miny=miny, maxx=maxx, maxy=maxy)
            overviews = cog.overviews(1)
        with conn.transaction():
            conn.execute(UPSERT, row)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return RasterLoad(name, final, row["crs"], row["width"], row["height"], overviews)
