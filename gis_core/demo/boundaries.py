"""The real boundaries shipped in data/laocai: the province and its 99 communes (2025 reform)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon, Point, shape
from shapely.ops import polylabel

from ..errors import ConfigError
from ..text import nfc, unaccent

PROVINCE_CODE = "15"
SOURCE = "vietnamese-provinces-database (MIT), simplified"
VALID_FROM = "2025-07-01"

# Town centres we know (old city and district seats); a centre that does not fall inside its unit
# is ignored and the unit's pole of inaccessibility is used instead.
KNOWN_CENTRES = {
    "02647": (103.970, 22.498),   # Lào Cai: Cốc Lếu, the old city centre
    "02671": (103.995, 22.425),   # Cam Đường
    "03006": (103.844, 22.336),   # Sa Pa town
    "04252": (104.875, 21.700),   # Yên Bái: the old city centre
    "04273": (104.860, 21.730),   # Nam Cường
    "04543": (104.840, 21.690),   # Âu Lâu
    "02683": (103.890, 22.540),   # Bát Xát
    "02761": (104.117, 22.770),   # Mường Khương
    "02809": (104.290, 22.700),   # Si Ma Cai
    "02839": (104.290, 22.540),   # Bắc Hà
    "02905": (104.190, 22.320),   # Phố Lu, Bảo Thắng
    "02947": (104.470, 22.240),   # Phố Ràng, Bảo Yên
    "03082": (104.250, 22.090),   # Văn Bàn
    "04303": (104.770, 22.110),   # Yên Thế, Lục Yên
    "04456": (104.090, 21.850),   # Mù Cang Chải
    "04672": (104.560, 21.570),   # Văn Chấn
    "04714": (104.950, 21.750),   # Yên Bình
    "04498": (104.820, 21.760),   # Trấn Yên
}
# Seats of the former districts: small towns, denser than the mountain communes around them.
TOWNS = frozenset({"02683", "02761", "02809", "02839", "02905", "02947", "03082", "04303", "04456",
                   "04606", "04672", "04714", "04498", "03103"})
# Communes along the border with China (Yunnan), for border cameras.
BORDER = frozenset({"02701", "02686", "02695", "02683", "02647", "02752", "02761", "02788", "02809",
                    "02824"})
# Big centres get more of everything (population weight multiplier).
WEIGHT = {"02647": 3.0, "04252": 2.6, "03006": 2.4, "02671": 1.6, "04273": 1.4, "04288": 1.4}


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    name_en: str
    full_name: str
    full_name_en: str
    kind: str               # Tỉnh, Phường, Xã
    area_km2: float
    geom: MultiPolygon

    @property
    def name_unaccent(self) -> str:
        return unaccent(self.name)


@dataclass(frozen=True)
class Commune(Unit):
    cls: str                # urban (phường), town (former district seat), rural
    centre: Point
    weight: float           # relative population, drives how much is generated here

    @property
    def lower_kind(self) -> str:
        """'phường' or 'xã', as written inside an address."""
        return self.kind.lower()

    @property
    def border(self) -> bool:
        return self.code in BORDER


def _read(path: Path) -> list[dict]:
    if not path.exists():
        raise ConfigError(f"Thiếu tệp dữ liệu ranh giới: {path}", f"Boundary data file missing: {path}")
    return json.loads(path.read_text(encoding="utf-8"))["features"]


def _unit(props: dict, geometry: dict, kind: str) -> dict:
    geom = shape(geometry)
    if geom.geom_type == "Polygon":
        geom = MultiPolygon([geom])
    if geom.geom_type != "MultiPolygon" or not geom.is_valid:
        raise ConfigError(f"Ranh giới không hợp lệ: {props.get('code')}", f"Invalid boundary: {props.get('code')}")
    return dict(code=props["code"], name=nfc(props["name"]), name_en=props.get("nameEn") or "",
                full_name=nfc(props["fullName"]), full_name_en=props.get("fullNameEn") or "",
                kind=kind, area_km2=float(props["areaKm2"]), geom=geom)


def _kind(full_name: str) -> str:
    for kind in ("Phường", "Xã", "Đặc khu"):
        if full_name.startswith(kind + " "):
            return kind
    raise ConfigError(f"Không xác định được loại đơn vị: {full_name}", f"Unknown unit kind: {full_name}")


def _centre(code: str, geom: MultiPolygon) -> Point:
    known = KNOWN_CENTRES.get(code)
    if known is not None:
        point = Point(known)
        if geom.contains(point):
            return point
    largest = max(geom.geoms, key=lambda p: p.area)
    return polylabel(largest, tolerance=0.0005)


def read_units(data_dir: Path) -> tuple[Unit, list[Commune]]:
    """The province and its communes (sorted by code), from data/laocai."""
    folder = data_dir / "laocai"
    (pf,) = _read(folder / "province_2025.geojson")
    province = Unit(**_unit(pf["properties"], pf["geometry"], "Tỉnh"))
    if province.code != PROVINCE_CODE:
        raise ConfigError("Tệp ranh giới tỉnh không phải Lào Cai.", "The province file is not Lào Cai.")
    communes = []
    for f in _read(folder / "communes_2025.geojson"):
        fields = _unit(f["properties"], f["geometry"], _kind(nfc(f["properties"]["fullName"])))
        code = fields["code"]
        cls = "urban" if fields["kind"] == "Phường" else ("town" if code in TOWNS else "rural")
        weight = {"urban": 6.0, "town": 2.5, "rural": 1.0}[cls] * WEIGHT.get(code, 1.0)
        communes.append(Commune(**fields, cls=cls, centre=_centre(code, fields["geom"]), weight=weight))
    communes.sort(key=lambda c: c.code)
    for c in communes:
        shapely.prepare(c.geom)   # every sampler tests points against these many times
    return province, communes
