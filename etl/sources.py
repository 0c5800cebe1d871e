"""Source declarations: one small YAML file per source under etl/sources/.

    name: schools_sgddt               # defaults to the file name
    layer: schools                    # a layer of the registry (layers/*.yml)
    kind: file                        # file | ogcapi | rest | directory
    path: /srv/drop/truong_hoc.gpkg   # file: relative paths are relative to this YAML file
    crs: EPSG:9208                    # assumed when the input does not say its CRS
    key: [code]                       # natural key; a UNIQUE constraint of the table
    fields: {code: MA_TRUONG, name: TEN_TRUONG}   # target column: input column
    defaults: {ownership: public}     # constant values for columns the input lacks
    codes: {level: {MN: preschool, TH: primary}}  # input value -> code, or a list of allowed values
    mode: upsert                      # or snapshot: records missing from the input are retired
    schedule: every 6h                # every 15m | every 6h | daily 02:00 | manual
    tolerance_m: 500                  # how far outside the province a location may lie
    encoding: tcvn3                   # utf-8 | cp1258 | tcvn3 | vni (any Python codec); else the .cpg

kind ogcapi takes `url` (the server's landing page) and `collection`; kind rest takes `url`,
`items` (dotted path to the list in each page), `page_param`, `size_param`, `page_size`,
`first_page` and a `geometry` declaration ({lon, lat} or {wkt} or {geojson}); kind directory takes
`path` (the drop directory) and `pattern`.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gis_core.settings import PROJECT_ROOT

from .errors import SourceError

SOURCES_DIR = PROJECT_ROOT / "etl" / "sources"
KINDS = {"file", "ogcapi", "rest", "directory"}
MODES = {"upsert", "snapshot"}
NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")
EVERY = re.compile(r"^every\s+(\d+)\s*([smhd])$")
DAILY = re.compile(r"^daily\s+([01]\d|2[0-3]):([0-5]\d)$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
VN_TZ = dt.timezone(dt.timedelta(hours=7))


@dataclass(frozen=True)
class Schedule:
    """When a source is due: every N seconds after its last run, or once a day at a local (UTC+7) time."""

    every_s: int | None = None
    daily_at: dt.time | None = None

    @classmethod
    def parse(cls, text: str | None) -> Schedule:
        text = (text or "manual").strip().lower()
        if text == "manual":
            return cls()
        if m := EVERY.match(text):
            return cls(every_s=int(m[1]) * UNITS[m[2]])
        if m := DAILY.match(text):
            return cls(daily_at=dt.time(int(m[1]), int(m[2])))
        raise SourceError(f"Lịch không hợp lệ: {text!r} (vd: 'every 6h', 'daily 02:00', 'manual').",
                          f"Bad schedule {text!r} (e.g. 'every 6h', 'daily 02:00', 'manual').")

    @property
    def manual(self) -> bool:
        return self.every_s is None and self.daily_at is None

    def due(self, last_start: dt.datetime | None, now: dt.datetime) -> bool:
        if self.manual:
            return False
        if last_start is None:
            return True
        if self.every_s is not None:
            return (now - last_start).total_seconds() >= self.every_s
        local = now.astimezone(VN_TZ)
        assert self.daily_at is not None   # neither manual nor every_s: a daily time
        slot = dt.datetime.combine(local.date(), self.daily_at, VN_TZ)
        if slot > local:
            slot -= dt.timedelta(days=1)
        return last_start < slot


@dataclass(frozen=True)
class Source:
    name: str
    layer: str
    kind: str = "file"
    path: Path | None = None
    url: str | None = None
    collection: str | None = None
    crs: str | None = None
    key: tuple[str, ...] | None = None
    fields: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, object] = field(default_factory=dict)
    codes: dict[str, object] = field(default_factory=dict)
    mode: str = "upsert"
    schedule: Schedule = Schedule()
    tolerance_m: float = 500.0
    assign_commune: bool = True
    encoding: str | None = None
    layer_name: str | None = None
    geometry: dict = field(default_factory=dict)
    rest: dict = field(default_factory=dict)
    pattern: str = "*"
    tag: str | None = None
    adhoc_load: bool = False          # made by `iocgis etl load`, not declared in a file

    @property
    def request(self) -> dict | None:
        """What an ad-hoc load was asked to do, kept with its run so that it can be made again."""
        if not self.adhoc_load or self.path is None:
            return None
        return {"layer": self.layer, "path": str(Path(self.path).resolve()), "crs": self.crs,
                "snapshot": self.mode == "snapshot", "tag": self.tag, "encoding": self.encoding}

    @classmethod
    def from_request(cls, request: dict) -> Source:
        return cls.adhoc(request["layer"], Path(request["path"]), crs=request.get("crs"),
                         snapshot=bool(request.get("snapshot")), tag=request.get("tag"),
                         encoding=request.get("encoding"))

    @property
    def provenance(self) -> str:
        """What the rows' source column says: the rows a snapshot of this source may retire."""
        return self.tag or f"etl:{self.name}"

    @classmethod
    def adhoc(cls, layer: str, path: Path, crs: str | None = None, snapshot: bool = False,
              tag: str | None = None, encoding: str | None = None) -> Source:
        """`iocgis etl load LAYER FILE`: columns named as the table's, the table's key."""
        return cls(name=f"load:{layer}", layer=layer, kind="file", path=Path(path), crs=crs,
                   mode="snapshot" if snapshot else "upsert", tag=tag or f"etl:{layer}",
                   encoding=check_encoding(encoding), adhoc_load=True)


def check_encoding(encoding: str | None) -> str | None:
    """The encoding as declared, once it is known to be one (a Python codec, TCVN3 and VNI included)."""
    if encoding is None:
        return None
    from . import vnfonts  # noqa: F401  (registers the codecs "tcvn3" and "vni")

    try:
        codecs.lookup(str(encoding))
    except LookupError:
        raise SourceError(f"Bảng mã không hỗ trợ: {encoding!r} (vd: utf-8, cp1258, tcvn3, vni).",
                          f"Unsupported encoding {encoding!r} (e.g. utf-8, cp1258, tcvn3, vni).") from None
    return str(encoding)


def parse_source(path: Path) -> Source:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    where = path.name
    if not isinstance(raw, dict):
        raise SourceError(f"{where}: phải là một bảng khóa/giá trị.", f"{where}: must be a mapping.")
    known = set(Source.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise SourceError(f"{where}: khóa lạ {sorted(unknown)}.", f"{where}: unknown keys {sorted(unknown)}.")
    name = str(raw.get("name") or path.stem)
    if not NAME.match(name):
        raise SourceError(f"{where}: tên nguồn không hợp lệ {name!r}.", f"{where}: bad source name {name!r}.")
    kind = raw.get("kind", "file")
    if kind not in KINDS:
        raise SourceError(f"{where}: kind phải là một trong {sorted(KINDS)}.",
                          f"{where}: kind must be one of {sorted(KINDS)}.")
    mode = raw.get("mode", "upsert")
    if mode not in MODES:
        raise SourceError(f"{where}: mode phải là upsert hoặc snapshot.", f"{where}: mode must be upsert or snapshot.")
    if not raw.get("layer"):
        raise SourceError(f"{where}: thiếu layer.", f"{where}: layer is missing.")
    if kind in ("file", "directory") and not raw.get("path"):
        raise SourceError(f"{where}: thiếu path.", f"{where}: path is missing.")
    if kind in ("ogcapi", "rest") and not raw.get("url"):
        raise SourceError(f"{where}: thiếu url.", f"{where}: url is missing.")
    if kind == "ogcapi" and not raw.get("collection"):
        raise SourceError(f"{where}: thiếu collection.", f"{where}: collection is missing.")
    file_path = Path(raw["path"]) if raw.get("path") else None
    if file_path is not None and not file_path.is_absolute():
        file_path = (path.parent / file_path).resolve()
    key = raw.get("key")
    if isinstance(key, str):
        key = [key]
    return Source(
        name=name, layer=str(raw["layer"]), kind=kind, path=file_path, url=raw.get("url"),
        collection=raw.get("collection"), crs=raw.get("crs"), key=tuple(key) if key else None,
        fields={str(k): str(v) for k, v in (raw.get("fields") or {}).items()},
        defaults=dict(raw.get("defaults") or {}), codes=dict(raw.get("codes") or {}), mode=mode,
        schedule=Schedule.parse(raw.get("schedule")), tolerance_m=float(raw.get("tolerance_m", 500)),
        assign_commune=bool(raw.get("assign_commune", True)), encoding=check_encoding(raw.get("encoding")),
        layer_name=raw.get("layer_name"), geometry=dict(raw.get("geometry") or {}),
        rest=dict(raw.get("rest") or {}), pattern=str(raw.get("pattern", "*")), tag=raw.get("tag"),
    )


def load_sources(directory: Path = SOURCES_DIR) -> dict[str, Source]:
    sources: dict[str, Source] = {}
    for path in sorted(Path(directory).glob("*.yml")):
        source = parse_source(path)
        if source.name in sources:
            raise SourceError(f"Hai nguồn trùng tên {source.name}.", f"Two sources are named {source.name}.")
        sources[source.name] = source
    return sources
