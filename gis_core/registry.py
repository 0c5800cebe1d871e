"""The layer registry: one YAML file per published layer in layers/, the single source of truth
for its table, fields (public or restricted), geometry, titles, style and OGC metadata.

A file with `kind: coverage` declares a raster instead: an OGC API - Coverages collection naming
the raster by its name in the `rasters` catalog (the file itself is found at app start). Vector
layers are what iterating the registry yields, as before; coverages are `Registry.coverages()`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import ConfigError

GEOMETRY_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
THEMES = {"administration", "planning", "education", "health", "safety", "environment"}
IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Text:
    vi: str
    en: str


@dataclass(frozen=True)
class Field:
    name: str
    label: Text
    type: str
    restricted: bool = False
    restricted_to: tuple[str, ...] = ()   # the roles that may see a restricted field (gis_core/auth/rules.py)


@dataclass(frozen=True)
class Style:
    color: str
    fill_color: str
    fill_opacity: float
    weight: float
    icon: str | None
    popup: tuple[str, ...]
    label_field: str | None


@dataclass(frozen=True)
class Tiles:
    min_zoom: int
    max_zoom: int
    cluster_below: int     # point layers: aggregated into counted cells below this zoom
    basemap: bool          # drawn in the combined offline base-map tileset
    attributes: tuple[str, ...]  # public fields carried in tiles: short ones, tiles must stay small


@dataclass(frozen=True)
class Layer:
    id: str
    table: str
    title: Text
    description: Text
    theme: str
    geometry_type: str
    geometry_column: str
    id_field: str
    fields: tuple[Field, ...]
    temporal_field: str | None
    keywords: tuple[str, ...]
    style: Style
    public: bool
    order: int
    base_table: str        # the table behind a view: its writes are what change this layer
    tiles: Tiles
    path: Path
    readable_by: tuple[str, ...] = ()   # roles that may read it when it is not public
    writable_by: tuple[str, ...] = ()   # roles that may write it through OGC API Features transactions

    @property
    def public_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.restricted)

    @property
    def restricted_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.restricted)

    kind = "feature"

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass(frozen=True)
class Coverage:
    """A raster published as an OGC API - Coverages collection (and summarised by `zonal-stats`)."""

    id: str
    raster: str                 # its name in the `rasters` catalog
    title: Text
    description: Text
    theme: str
    keywords: tuple[str, ...]
    unit: str | None
    classes: tuple[tuple[int, Text], ...]   # a class raster: value -> label; empty for a continuous one
    public: bool
    order: int
    path: Path

    kind = "coverage"


def _text(raw, where: str) -> Text:
    if not isinstance(raw, dict) or not raw.get("vi") or not raw.get("en"):
        raise ConfigError(f"{where}: cần cả tiếng Việt (vi) và tiếng Anh (en)",
                          f"{where}: needs both Vietnamese (vi) and English (en)")
    return Text(str(raw["vi"]), str(raw["en"]))


def _ident(value, where: str) -> str:
    if not isinstance(value, str) or not IDENT.match(value):
        raise ConfigError(f"{where}: tên không hợp lệ {value!r}", f"{where}: invalid name {value!r}")
    return value


def _roles(raw, where: str) -> tuple[str, ...]:
    from .auth.rules import ROLES

    roles = tuple(raw or ())
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ConfigError(f"{where}: vai trò không tồn tại {unknown}",
                          f"{where}: unknown roles {unknown} (known: {ROLES})")
    return roles


def _read(path: Path) -> tuple[dict, str]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    layer_id = _ident(raw.get("id"), f"{path.name} id")
    if path.stem != layer_id:
        raise ConfigError(f"{path.name}: tên tệp phải trùng id '{layer_id}'",
                          f"{path.name}: file name must match id '{layer_id}'")
    return raw, layer_id


def parse_coverage(path: Path) -> Coverage:
    raw, coverage_id = _read(path)
    where = path.name
    if raw.get("kind") != "coverage":
        raise ConfigError(f"{where}: không phải lớp raster (kind: coverage)", f"{where}: not a coverage")
    theme = raw.get("theme")
    if theme not in THEMES:
        raise ConfigError(f"{where}: theme không hợp lệ", f"{where}: theme must be one of {sorted(THEMES)}")
    classes = []
    for value, label in (raw.get("classes") or {}).items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where}: giá trị lớp phải là số nguyên ({value!r})",
                              f"{where}: class values must be integers ({value!r})")
        classes.append((value, _text(label, f"{where} class {value}")))
    return Coverage(
        id=coverage_id,
        raster=_ident(raw.get("raster"), f"{where} raster"),
        title=_text(raw.get("title"), f"{where} title"),
        description=_text(raw.get("description"), f"{where} description"),
        theme=theme,
        keywords=tuple(str(k) for k in raw.get("keywords") or ()),
        unit=str(raw["unit"]) if raw.get("unit") is not None else None,
        classes=tuple(sorted(classes)),
        public=bool(raw.get("public", True)),
        order=int(raw.get("order", 999)),
        path=path,
    )


def parse_layer(path: Path) -> Layer:
    raw, layer_id = _read(path)
    where = path.name
    if raw.get("kind", "feature") != "feature":
        raise ConfigError(f"{where}: không phải lớp vector", f"{where}: not a vector layer (kind {raw.get('kind')!r})")
    geometry_type = raw.get("geometry_type")
    if geometry_type not in GEOMETRY_TYPES:
        raise ConfigError(f"{where}: geometry_type không hợp lệ", f"{where}: bad geometry_type {geometry_type!r}")
    theme = raw.get("theme")
    if theme not in THEMES:
        raise ConfigError(f"{where}: theme không hợp lệ", f"{where}: theme must be one of {sorted(THEMES)}")
    fields = []
    for name, spec in (raw.get("fields") or {}).items():
        spec = spec or {}
        restricted = bool(spec.get("restricted", False))
        restricted_to = _roles(spec.get("restricted_to"), f"{where} field {name} restricted_to")
        if restricted_to and not restricted:
            raise ConfigError(f"{where}: restricted_to chỉ dùng cho trường hạn chế ({name})",
                              f"{where}: restricted_to is only for restricted fields ({name})")
        fields.append(Field(
            name=_ident(name, f"{where} field"),
            label=_text(spec.get("label"), f"{where} field {name}"),
            type=str(spec.get("type", "string")),
            restricted=restricted,
            restricted_to=restricted_to,
        ))
    if not fields:
        raise ConfigError(f"{where}: chưa khai báo trường nào", f"{where}: declares no fields")
    names = {f.name for f in fields}
    id_field = _ident(raw.get("id_field", "id"), f"{where} id_field")
    temporal = raw.get("temporal_field")
    if temporal is not None and temporal not in names:
        raise ConfigError(f"{where}: temporal_field phải là một trường đã khai báo",
                          f"{where}: temporal_field must be a declared field")
    style_raw = raw.get("style") or {}
    popup = tuple(style_raw.get("popup") or [])
    for name in popup:
        if name not in names or next(f for f in fields if f.name == name).restricted:
            raise ConfigError(f"{where}: popup chỉ được dùng trường công khai ({name})",
                              f"{where}: popup may only show public fields ({name})")
    label_field = style_raw.get("label_field")
    if label_field is not None and label_field not in names:
        raise ConfigError(f"{where}: label_field chưa khai báo", f"{where}: label_field {label_field!r} undeclared")
    style = Style(
        color=str(style_raw.get("color", "#3388ff")),
        fill_color=str(style_raw.get("fill_color", style_raw.get("color", "#3388ff"))),
        fill_opacity=float(style_raw.get("fill_opacity", 0.3)),
        weight=float(style_raw.get("weight", 2)),
        icon=style_raw.get("icon"),
        popup=popup,
        label_field=label_field,
    )
    tiles_raw = raw.get("tiles") or {}
    tiles = Tiles(
        min_zoom=int(tiles_raw.get("min_zoom", 0)),
        max_zoom=int(tiles_raw.get("max_zoom", 22)),
        cluster_below=int(tiles_raw.get("cluster_below", 12 if geometry_type in ("Point", "MultiPoint") else 0)),
        basemap=bool(tiles_raw.get("basemap", False)),
        attributes=tuple(tiles_raw.get("attributes") or dict.fromkeys([*popup, *filter(None, [label_field])])),
    )
    for name in tiles.attributes:
        if name not in names or next(f for f in fields if f.name == name).restricted:
            raise ConfigError(f"{where}: tiles.attributes chỉ gồm trường công khai ({name})",
                              f"{where}: tiles.attributes may only name public fields ({name})")
    if not 0 <= tiles.min_zoom <= tiles.max_zoom <= 24:
        raise ConfigError(f"{where}: tiles.min_zoom/max_zoom không hợp lệ", f"{where}: bad tile zoom range")
    table = _ident(raw.get("table", layer_id), f"{where} table")
    base_table = _ident(raw.get("base_table", table), f"{where} base_table")
    writable_by = _roles(raw.get("writable_by"), f"{where} writable_by")
    if writable_by and base_table != table:
        raise ConfigError(f"{where}: lớp dựng từ view không ghi được (writable_by)",
                          f"{where}: a layer served from a view cannot be writable (writable_by)")
    return Layer(
        id=layer_id,
        table=table,
        title=_text(raw.get("title"), f"{where} title"),
        description=_text(raw.get("description"), f"{where} description"),
        theme=theme,
        geometry_type=geometry_type,
        geometry_column=_ident(raw.get("geometry_column", "geom"), f"{where} geometry_column"),
        id_field=id_field,
        fields=tuple(fields),
        temporal_field=temporal,
        keywords=tuple(str(k) for k in raw.get("keywords") or ()),
        style=style,
        public=bool(raw.get("public", True)),
        order=int(raw.get("order", 999)),
        base_table=base_table,
        tiles=tiles,
        path=path,
        readable_by=_roles(raw.get("readable_by"), f"{where} readable_by"),
        writable_by=writable_by,
    )


class Registry:
    """All layers, in a stable order (the `order` key of each file, then id); the coverages apart."""

    def __init__(self, layers: list[Layer], coverages: list[Coverage] | None = None):
        self._layers = {layer.id: layer for layer in layers}
        self._coverages = {c.id: c for c in coverages or ()}
        clash = set(self._layers) & set(self._coverages)
        if clash:
            raise ConfigError(f"Trùng id giữa lớp vector và raster: {sorted(clash)}",
                              f"Vector layer and coverage ids clash: {sorted(clash)}")

    @classmethod
    def load(cls, directory: Path) -> Registry:
        files = sorted(directory.glob("*.yml"))
        if not files:
            raise ConfigError(f"Không có lớp nào trong {directory}", f"No layers in {directory}")
        layers, coverages = [], []
        for p in files:
            kind = (yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("kind", "feature")
            if kind == "coverage":
                coverages.append(parse_coverage(p))
            else:
                layers.append(parse_layer(p))
        order = lambda item: (item.order, item.id)  # noqa: E731
        return cls(sorted(layers, key=order), sorted(coverages, key=order))

    def coverages(self) -> list[Coverage]:
        """The published rasters (OGC API - Coverages), in order."""
        return [c for c in self._coverages.values() if c.public]

    def coverage(self, coverage_id: str) -> Coverage:
        try:
            return self._coverages[coverage_id]
        except KeyError:
            raise KeyError(coverage_id) from None

    def __iter__(self):
        return iter(self._layers.values())

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, layer_id: str) -> Layer:
        try:
            return self._layers[layer_id]
        except KeyError:
            raise KeyError(layer_id) from None

    def published(self) -> list[Layer]:
        return [layer for layer in self if layer.public]
