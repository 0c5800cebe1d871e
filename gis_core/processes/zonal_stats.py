"""OGC API - Processes: `zonal-stats`, a raster summarised per commune.

Inputs: `raster`, the id of a coverage collection (`dem`, `landslide_hazard`, ...; the names the
generated config lists), and optionally `communes`, a list of commune codes (all communes when
absent). Output: for each commune its pixel count, min, max and mean, and for a class raster each
class's share of the commune's pixels.

The commune geometries come from PostGIS already in the raster's CRS; the raster file is the one
the `rasters` catalog names, read once over the communes' extent. Each commune is masked on its
own (pixel centres inside it), so a commune's figures do not depend on which others were asked
for, even where simplified boundaries overlap; a commune too small to hold a pixel centre falls
back to the pixels it touches. Pixels are counted, not weighted by area: at 0.005° their area
varies by well under 1 % across the province.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import rasterio
import shapely
from affine import Affine
from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError
from rasterio.features import geometry_mask
from rasterio.windows import Window, from_bounds

from ..db import connect
from ..errors import DatabaseUnavailable, InvalidParameter, IocgisError, NotFound
from ..zoning.process import psycopg_url

PROCESS_ID = "zonal-stats"
MAX_COMMUNES = 500

RASTER_SQL = "SELECT path FROM rasters WHERE name = %s"
COMMUNES_SQL = """
SELECT code, name, ST_AsBinary(ST_Transform(geom, %(srid)s))
FROM communes
WHERE %(codes)s::text[] IS NULL OR code = ANY(%(codes)s::text[])
ORDER BY code"""

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": PROCESS_ID,
    "title": {"vi": "Thống kê raster theo xã", "en": "Raster statistics per commune"},
    "description": {
        "vi": "Tóm tắt một lớp raster (độ cao, nguy cơ sạt lở) trong từng xã, phường: số ô, nhỏ nhất, lớn nhất, "
              "trung bình, và tỷ lệ từng cấp với lớp phân cấp.",
        "en": "Summarises a raster (elevation, landslide hazard) within each commune: pixel count, min, max, "
              "mean, and the share of each class for a class raster.",
    },
    "jobControlOptions": ["sync-execute"],
    "keywords": ["raster", "thống kê", "xã", "zonal statistics", "commune"],
    "links": [],
    "inputs": {
        "raster": {
            "title": {"vi": "Lớp raster", "en": "Raster"},
            "description": "id of a coverage collection",
            "schema": {"type": "string", "enum": []},
            "minOccurs": 1, "maxOccurs": 1,
        },
        "communes": {
            "title": {"vi": "Mã xã, phường", "en": "Commune codes"},
            "description": "the communes to summarise; every commune when absent",
            "schema": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_COMMUNES},
            "minOccurs": 0, "maxOccurs": 1,
        },
    },
    "outputs": {
        "result": {
            "title": {"vi": "Thống kê", "en": "Statistics"},
            "schema": {"type": "object", "contentMediaType": "application/json"},
        }
    },
    "example": {"inputs": {"raster": "landslide_hazard", "communes": ["02647", "02671"]}},
}


@dataclass(frozen=True)
class Zone:
    code: str
    name: str
    geom: shapely.Geometry


def summarise(path: Path, zones: list[Zone], classes: dict[int, dict] | None = None) -> list[dict]:
    """min/max/mean (and class shares when `classes`) of the raster at `path` inside each zone."""
    with rasterio.open(path) as src:
        window = _window(src, zones)
        if window is None:
            data = np.ma.masked_all((0, 0), dtype=src.dtypes[0])
            transform = src.transform
        else:
            data = src.read(1, window=window, masked=True)
            transform = src.window_transform(window)
    valid = ~np.ma.getmaskarray(data)
    values = np.ma.getdata(data)
    out = []
    for zone in zones:
        rows, cols, inside = _zone_mask(zone, data.shape, transform)
        picked = values[rows, cols][inside & valid[rows, cols]]
        row: dict = {"code": zone.code, "name": zone.name, "pixels": int(picked.size),
                     "nodata_pixels": int((inside & ~valid[rows, cols]).sum())}
        if picked.size:
            row.update(min=_num(picked.min()), max=_num(picked.max()), mean=round(float(picked.mean()), 3))
        else:
            row.update(min=None, max=None, mean=None)
        if classes is not None:
            counts = {value: int((picked == value).sum()) for value in classes}
            row["classes"] = {str(value): {"label": classes[value], "pixels": n,
                                           "share": round(n / picked.size, 4) if picked.size else None}
                              for value, n in counts.items()}
        out.append(row)
    return out


def _zone_mask(zone: Zone, shape: tuple[int, int], transform) -> tuple[slice, slice, np.ndarray]:
    """The zone's pixels within its own bounding window of the array: those whose centre it holds,
    or every pixel it touches when it holds no centre (a ward smaller than a pixel)."""
    w = from_bounds(*zone.geom.bounds, transform=transform)
    row0, col0 = max(int(np.floor(w.row_off)), 0), max(int(np.floor(w.col_off)), 0)
    row1 = min(int(np.ceil(w.row_off + w.height)), shape[0])
    col1 = min(int(np.ceil(w.col_off + w.width)), shape[1])
    rows, cols = slice(row0, max(row1, row0)), slice(col0, max(col1, col0))
    sub = (rows.stop - rows.start, cols.stop - cols.start)
    if 0 in sub:
        return rows, cols, np.zeros(sub, dtype=bool)
    sub_transform = transform * Affine.translation(col0, row0)
    inside = ~geometry_mask([zone.geom], out_shape=sub, transform=sub_transform)
    if not inside.any():
        inside = ~geometry_mask([zone.geom], out_shape=sub, transform=sub_transform, all_touched=True)
    return rows, cols, inside


def _window(src, zones: list[Zone]) -> Window | None:
    """The whole pixels of the raster covering the zones; None when they miss it."""
    if not zones:
        return None
    w = from_bounds(*shapely.total_bounds(np.array([z.geom for z in zones], dtype=object)), transform=src.transform)
    col0, row0 = max(int(np.floor(w.col_off)), 0), max(int(np.floor(w.row_off)), 0)
    col1 = min(int(np.ceil(w.col_off + w.width)), src.width)
    row1 = min(int(np.ceil(w.row_off + w.height)), src.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def _num(value) -> float | int:
    return int(value) if np.issubdtype(type(value), np.integer) else round(float(value), 3)


def _codes(raw) -> list[str] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = [raw]
    if (not isinstance(raw, list) or not raw or len(raw) > MAX_COMMUNES
            or not all(isinstance(c, str) and c.isdigit() and len(c) <= 10 for c in raw)):
        raise InvalidParameter(f"communes phải là danh sách mã xã (1 đến {MAX_COMMUNES} mã, chỉ gồm chữ số).",
                               f"communes must be a list of 1 to {MAX_COMMUNES} commune codes (digits).")
    return list(dict.fromkeys(raw))


class ZonalStatsProcessor(BaseProcessor):
    def __init__(self, processor_def: dict):
        self.rasters: dict[str, dict] = dict(processor_def.get("rasters") or {})
        metadata = copy.deepcopy(PROCESS_METADATA)
        metadata["inputs"]["raster"]["schema"]["enum"] = sorted(self.rasters)
        super().__init__(processor_def, metadata)
        self.url = psycopg_url(processor_def["data"])

    def execute(self, data: dict, outputs=None):
        try:
            result = self._run(data)
        except IocgisError as exc:
            # pygeoapi reports a failed execution as 400 with this text: keep it bilingual and safe.
            raise ProcessorExecuteError(f"{exc.message_vi} / {exc.message_en}") from None
        return "application/json", result

    def _run(self, data) -> dict:
        if not isinstance(data, dict) or not isinstance(data.get("raster"), str):
            raise InvalidParameter("Thiếu tên lớp raster (raster).", "The raster input is missing.")
        raster_id = data["raster"]
        spec = self.rasters.get(raster_id)
        if spec is None:
            raise InvalidParameter(f"Không có lớp raster '{raster_id}'; chọn một trong {sorted(self.rasters)}.",
                                   f"No raster '{raster_id}'; choose one of {sorted(self.rasters)}.")
        codes = _codes(data.get("communes"))
        try:
            with connect(self.url) as conn:
                row = conn.execute(RASTER_SQL, (spec["raster"],)).fetchone()
                if row is None or not Path(row[0]).is_file():
                    raise NotFound(f"Tệp raster '{spec['raster']}' chưa được nạp.",
                                   f"The raster file '{spec['raster']}' is not loaded.")
                path = Path(row[0])
                with rasterio.open(path) as src:
                    srid = src.crs.to_epsg() if src.crs else None
                if srid is None:
                    raise NotFound("Raster không có mã EPSG.", "The raster's CRS has no EPSG code.")
                rows = conn.execute(COMMUNES_SQL, {"srid": srid, "codes": codes}).fetchall()
        except psycopg.OperationalError:
            raise DatabaseUnavailable("Không kết nối được cơ sở dữ liệu.", "The database cannot be reached.") from None
        if codes is not None:
            unknown = sorted(set(codes) - {r[0] for r in rows})
            if unknown:
                listed = ", ".join(unknown)
                raise InvalidParameter(f"Không có xã mã {listed}.", f"No commune with code {listed}.")
        zones = [Zone(code, name, shapely.from_wkb(bytes(wkb))) for code, name, wkb in rows]
        classes = {int(k): v for k, v in spec["classes"].items()} if spec.get("classes") else None
        return {"raster": raster_id, "unit": spec.get("unit"), "communes": summarise(path, zones, classes)}

    def __repr__(self) -> str:
        return f"<ZonalStatsProcessor> {self.name}"
