"""OGC API - Processes: `zoning-check`, a pygeoapi process plugin.

A footprint (GeoJSON) and the building's attributes in, the verdict out, computed by the same SQL
as the bulk check and not stored. Bad input is refused with a bilingual reason; pygeoapi turns
any failure of `execute` into a 400 with that reason, never a 500 with a traceback.
"""

from __future__ import annotations

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from ..db import connect
from ..errors import InvalidParameter, IocgisError
from .check import check_footprint, proposal_from_inputs
from .footprint import parse_footprint

PROCESS_ID = "zoning-check"

PROCESS_METADATA = {
    "version": "1.0.0",
    "id": PROCESS_ID,
    "title": {"vi": "Kiểm tra quy hoạch công trình", "en": "Zoning check of a building"},
    "description": {
        "vi": "Đối chiếu mặt bằng công trình và các thông số (mục đích sử dụng, số tầng, chiều cao, diện tích "
              "thửa) với quy hoạch có hiệu lực vào ngày nộp hồ sơ: các khu và lớp phủ bị chạm tới, tỷ lệ diện "
              "tích trong từng khu, kết luận và lý do.",
        "en": "Checks a building footprint and its attributes (use, floors, height, parcel area) against the "
              "land-use plan in force on the application date: the zones and overlays it touches, its share "
              "in each, the verdict and the reasons.",
    },
    "jobControlOptions": ["sync-execute"],
    "keywords": ["quy hoạch", "giấy phép xây dựng", "zoning", "building permit"],
    "links": [],
    "inputs": {
        "footprint": {
            "title": {"vi": "Mặt bằng công trình", "en": "Footprint"},
            "description": "GeoJSON Polygon or MultiPolygon (geometry or Feature), longitude/latitude unless crs says "
                           "otherwise",
            "schema": {"type": "object", "contentMediaType": "application/geo+json"},
            "minOccurs": 1, "maxOccurs": 1,
        },
        "intended_use": {
            "title": {"vi": "Mục đích sử dụng", "en": "Intended use"},
            "description": "residential, commercial, office, hotel, school, clinic, public, industry, warehouse, "
                           "agriculture, forestry, park, transport, religious",
            "schema": {"type": "string"}, "minOccurs": 1, "maxOccurs": 1,
        },
        "floors": {"title": {"vi": "Số tầng", "en": "Floors"}, "schema": {"type": "integer", "minimum": 1},
                   "minOccurs": 1, "maxOccurs": 1},
        "height_m": {"title": {"vi": "Chiều cao (m)", "en": "Height (m)"}, "schema": {"type": "number"},
                     "minOccurs": 1, "maxOccurs": 1},
        "parcel_area_m2": {"title": {"vi": "Diện tích thửa đất (m²)", "en": "Parcel area (m²)"},
                           "schema": {"type": "number"}, "minOccurs": 0, "maxOccurs": 1},
        "footprint_area_m2": {"title": {"vi": "Diện tích xây dựng (m²)", "en": "Footprint area (m²)"},
                              "description": "measured from the footprint when absent",
                              "schema": {"type": "number"}, "minOccurs": 0, "maxOccurs": 1},
        "applied_on": {"title": {"vi": "Ngày nộp hồ sơ", "en": "Application date"},
                       "description": "YYYY-MM-DD; today when absent",
                       "schema": {"type": "string", "format": "date"}, "minOccurs": 0, "maxOccurs": 1},
        "crs": {"title": {"vi": "Hệ toạ độ", "en": "Coordinate reference system"},
                "description": "of the footprint, e.g. EPSG:9208 (VN-2000 / TM-3 104-45); default CRS84",
                "schema": {"type": "string"}, "minOccurs": 0, "maxOccurs": 1},
    },
    "outputs": {
        "result": {
            "title": {"vi": "Kết luận", "en": "Verdict"},
            "schema": {"type": "object", "contentMediaType": "application/json"},
        }
    },
    "example": {
        "inputs": {
            "footprint": {"type": "Polygon", "coordinates": [[[103.9705, 22.4856], [103.9707, 22.4856],
                                                              [103.9707, 22.4858], [103.9705, 22.4858],
                                                              [103.9705, 22.4856]]]},
            "intended_use": "residential", "floors": 4, "height_m": 15.5, "parcel_area_m2": 120,
        }
    },
}


def psycopg_url(url: str) -> str:
    """The pygeoapi config holds SQLAlchemy URLs (postgresql+psycopg://); psycopg wants postgresql://."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgresql") else url


class ZoningCheckProcessor(BaseProcessor):
    def __init__(self, processor_def: dict):
        super().__init__(processor_def, PROCESS_METADATA)
        self.url = psycopg_url(processor_def["data"])

    def execute(self, data: dict, outputs=None):
        try:
            if not isinstance(data, dict) or "footprint" not in data:
                raise _missing()
            footprint = parse_footprint(data["footprint"], data.get("crs"))
            with connect(self.url) as conn:
                proposal = proposal_from_inputs(conn, footprint, data)
                result = check_footprint(conn, proposal)
        except IocgisError as exc:
            # pygeoapi reports a failed execution as 400 with this text: keep it bilingual and safe.
            raise ProcessorExecuteError(f"{exc.message_vi} / {exc.message_en}") from None
        return "application/json", result

    def __repr__(self) -> str:
        return f"<ZoningCheckProcessor> {self.name}"


def _missing() -> IocgisError:
    return InvalidParameter("Thiếu mặt bằng công trình (footprint).", "The footprint input is missing.")
