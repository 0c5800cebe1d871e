"""The province map at `/`: a Folium page built from the layer registry alone.

The page holds no data. Each registry layer is a small element that the browser fills from our
own OGC API (`/ogc/collections/<id>/items`) the first time the layer is shown, so the HTML stays
a few kilobytes and depends only on (registry, settings): it is rendered once per app.

Folium points every script and stylesheet at public CDNs. `ASSETS` maps each of those asset names
to a file of an npm package that `/vendor` serves from node_modules (or drops it), and
`render_page` refuses to return a page that would still reach outside our own server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

import folium
from branca.element import Element, Figure, MacroElement
from folium.elements import JSCSSMixin
from folium.map import Layer as FoliumLayer
from folium.plugins import GroupedLayerControl
from folium.template import Template
from folium.utilities import JsCode
from markupsafe import escape

from gis_core.ogc_config import PROVINCE_BBOX
from gis_core.registry import Layer, Registry, Text
from gis_core.settings import Settings

PROVINCE_NAME = "Lào Cai"
RELIEF_TITLE = Text("Địa hình (từ DEM)", "Relief (from the DEM)")
# The indicator the map opens with: the first thing leaders ask about the province.
DEFAULT_INDICATOR = "poverty_rate"
PAGE_TITLE = Text(f"Bản đồ số tỉnh {PROVINCE_NAME} — IOC-GIS", f"Digital map of {PROVINCE_NAME} province")

# Folium asset name -> local URL, or None to leave the asset out. Keys are the names folium gives
# in `default_js` / `default_css` (folium 0.20); a name missing here fails the page build, so a
# folium upgrade or a new plugin cannot slip a CDN link in. Versions are pinned in package.json.
ASSETS: dict[str, str | None] = {
    # folium.Map
    "leaflet": "/vendor/leaflet/dist/leaflet.js",
    "jquery": "/vendor/jquery/dist/jquery.min.js",
    "bootstrap": "/vendor/bootstrap/dist/js/bootstrap.bundle.min.js",
    "awesome_markers": "/vendor/leaflet.awesome-markers/dist/leaflet.awesome-markers.min.js",
    "leaflet_css": "/vendor/leaflet/dist/leaflet.css",
    "bootstrap_css": "/vendor/bootstrap/dist/css/bootstrap.min.css",
    # Bootstrap 3 glyphicons serve only folium.Icon(prefix="glyphicon"); our icons are Font Awesome.
    "glyphicons_css": None,
    "awesome_markers_font_css": "/vendor/@fortawesome/fontawesome-free/css/all.min.css",
    "awesome_markers_css": "/vendor/leaflet.awesome-markers/dist/leaflet.awesome-markers.css",
    # folium's own stylesheet for Icon(angle=...), published on no package registry; we never rotate.
    "awesome_rotate_css": None,
    # folium.plugins.GroupedLayerControl
    "leaflet.groupedlayercontrol.min.js":
        "/vendor/leaflet-groupedlayercontrol/dist/leaflet.groupedlayercontrol.min.js",
    "leaflet.groupedlayercontrol.min.css":
        "/vendor/leaflet-groupedlayercontrol/dist/leaflet.groupedlayercontrol.min.css",
    # folium.plugins.MarkerCluster's names, so both share one copy if a page uses the plugin too
    "markerclusterjs": "/vendor/leaflet.markercluster/dist/leaflet.markercluster.js",
    "markerclustercss": "/vendor/leaflet.markercluster/dist/MarkerCluster.css",
    "markerclusterdefaultcss": "/vendor/leaflet.markercluster/dist/MarkerCluster.Default.css",
    # ours (webmap/static)
    "iocgis_map_js": "/static/iocgis/map.js",
    "iocgis_map_css": "/static/iocgis/map.css",
}

THEME_TITLES: dict[str, Text] = {
    "administration": Text("Hành chính", "Administration"),
    "planning": Text("Quy hoạch", "Planning"),
    "education": Text("Giáo dục", "Education"),
    "health": Text("Y tế", "Health"),
    "safety": Text("An ninh, an toàn", "Safety"),
    "environment": Text("Môi trường", "Environment"),
}


@dataclass(frozen=True)
class LayerView:
    """How much of a layer the map asks for, and whether it is on when the page opens.

    `cluster_days`: the layer is drawn from /api/layers/<id>/clusters (grid cells counted in
    PostGIS for the current bbox and zoom) instead of GeoJSON, the last N days of it (0: all)."""

    limit: int = 5000
    sortby: str | None = None
    show: bool = True
    note: Text | None = None
    cluster_days: int | None = None


# Layers that would swamp the page. Incidents grow without bound (10k+ a year, a million in the
# bench), so they come clustered by the server, the last 30 days by default; /incidents is where
# the full list lives. Zoning and permits are dense detail for planners: off at first, loaded
# when switched on.
VIEWS: dict[str, LayerView] = {
    "incidents": LayerView(cluster_days=30, note=Text("30 ngày gần nhất, gom cụm", "last 30 days, clustered")),
    "landuse_zones": LayerView(show=False),
    "building_permits": LayerView(show=False),
    # The province's public answer sheet: the latest reports, on request.
    "public_reports": LayerView(show=False, limit=2000, sortby="-reported_at",
                                note=Text("2.000 phản ánh mới nhất", "latest 2,000")),
}
DEFAULT_VIEW = LayerView()
LABEL_MIN_ZOOM = 10  # commune names on the map itself; below this the hover tooltip names them

_EXTERNAL = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']?(?P<url>(?:https?:)?//[^"'\s>]+)""",
                       re.IGNORECASE)
_LOCAL_HOSTS = re.compile(r"^(?:https?:)?//(?:127\.0\.0\.1|localhost)(?::\d+)?(?:/|$)", re.IGNORECASE)


def bilingual(text: Text) -> str:
    return f"{text.vi} / {text.en}"


def external_urls(html: str) -> list[str]:
    """Every <script src> / <link href> that leaves this machine."""
    return [m["url"] for m in _EXTERNAL.finditer(html) if not _LOCAL_HOSTS.match(m["url"])]


def items_url(layer: Layer, view: LayerView) -> str:
    names = [*layer.style.popup]
    if layer.style.label_field and layer.style.label_field not in names:
        names.append(layer.style.label_field)
    params: dict[str, str | int] = {"f": "json", "limit": view.limit}
    if view.sortby:
        params["sortby"] = view.sortby
    # Only what the popup and the label show: a lighter response, and nothing the page hides.
    public = {f.name for f in layer.public_fields if f.name != layer.id_field}
    wanted = [n for n in names if n in public]
    if wanted:
        params["properties"] = ",".join(wanted)
    return f"/ogc/collections/{layer.id}/items?{urlencode(params, safe=',')}"


def _geometry_kind(layer: Layer) -> str:
    if layer.geometry_type.endswith("Point"):
        return "point"
    return "line" if layer.geometry_type.endswith("LineString") else "polygon"


def layer_spec(layer: Layer, view: LayerView) -> dict:
    """What the browser needs to draw one layer; only public fields can appear (the registry
    rejects restricted popup fields)."""
    return {
        "id": layer.id,
        "title": layer.title.vi,
        "title_en": layer.title.en,
        "url": items_url(layer, view),
        "cluster_url": None if view.cluster_days is None else f"/api/layers/{layer.id}/clusters",
        "cluster_days": view.cluster_days,
        "item_url": f"/ogc/collections/{layer.id}/items/",
        "geometry": _geometry_kind(layer),
        "id_field": layer.id_field,
        "icon": layer.style.icon,
        "style": {
            "color": layer.style.color,
            "fill_color": layer.style.fill_color,
            "fill_opacity": layer.style.fill_opacity,
            "weight": layer.style.weight,
        },
        "popup": [{"name": name, "label": bilingual(layer.field(name).label), "type": layer.field(name).type}
                  for name in layer.style.popup],
        "label_field": layer.style.label_field,
        "label_min_zoom": LABEL_MIN_ZOOM,
        # a cap the layer control already announces needs no warning when the data hits it
        "capped": view.note is not None,
    }


def control_label(layer: Layer, view: LayerView) -> str:
    """The layer's line in the layer control (HTML): a swatch in the layer's colours, then the
    title in Vietnamese and English."""
    style = layer.style
    kind = _geometry_kind(layer)
    if kind == "point":
        inner = f'<i class="fa fa-{escape(style.icon)}"></i>' if style.icon else ""
        swatch = (f'<span class="iocgis-swatch point" style="background:{escape(style.color)};'
                  f'border-color:{escape(style.color)}">{inner}</span>')
    else:
        fill = "transparent" if style.fill_opacity == 0 else style.fill_color
        swatch = (f'<span class="iocgis-swatch" style="background:{escape(fill)};'
                  f'border-color:{escape(style.color)}"></span>')
    note = f' <span class="iocgis-note">({escape(bilingual(view.note))})</span>' if view.note else ""
    return f"{swatch}{escape(bilingual(layer.title))}{note}"


class OgcLayer(JSCSSMixin, FoliumLayer):
    """A registry layer drawn from our OGC API by webmap/static/iocgis/map.js."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = iocgis.layer({{ this.spec|tojson }});
        {% endmacro %}
        """
    )
    default_js = [(name, ASSETS[name] or "") for name in ("markerclusterjs", "iocgis_map_js")]
    default_css = [(name, ASSETS[name] or "") for name in ("markerclustercss", "iocgis_map_css")]

    def __init__(self, layer: Layer, view: LayerView):
        super().__init__(name=control_label(layer, view), overlay=True, control=True, show=view.show)
        self._name = "OgcLayer"
        self.layer = layer
        self.spec = layer_spec(layer, view)


class MapSetup(MacroElement):
    """What folium's own options cannot say: fit the province beside the open layer control,
    a metric scale, and Vietnamese names on the map's buttons. Added after the layer control."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            iocgis.setup({{ this._parent.get_name() }}, {{ this.bounds|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, bounds: list[list[float]]):
        super().__init__()
        self._name = "MapSetup"
        self.bounds = bounds


class ReliefLayer(FoliumLayer):
    """The offline base map's relief (hillshade tinted by height, drawn by our server from the DEM)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = iocgis.relief({{ this.url|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self):
        super().__init__(name=f'<span class="iocgis-swatch relief"></span>{escape(bilingual(RELIEF_TITLE))}',
                         overlay=True, control=True, show=True)
        self._name = "ReliefLayer"
        self.url = "/api/relief.json"


class LeadersControls(MacroElement):
    """Indicators (choropleth, legend, chart), search, drill-down and the shareable URL state, on
    top of the registry layers. Added last: it needs the map fitted and every layer made."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            iocgis.leaders({{ this._parent.get_name() }}, {
            {%- for id, element in this.layers.items() %}
                {{ id|tojson }}: {{ element.get_name() }},
            {%- endfor %}
            }, {{ this.options|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, layers: dict[str, FoliumLayer], options: dict):
        super().__init__()
        self._name = "LeadersControls"
        self.layers = layers
        self.options = options


class Page(Figure):
    """branca's Figure with the page language, a real title and no favicon request."""

    _template = Template(
        "<!DOCTYPE html>\n"
        '<html lang="vi">\n'
        "<head>\n"
        '    <meta charset="utf-8" />\n'
        "    <title>{{ this.title|e }}</title>\n"
        '    <link rel="icon" href="data:," />\n'
        "    {{ this.header.render(**kwargs) }}\n"
        "</head>\n"
        "<body>\n"
        "    {{ this.html.render(**kwargs) }}\n"
        "</body>\n"
        "<script>\n"
        "    {{ this.script.render(**kwargs) }}\n"
        "</script>\n"
        "</html>\n"
    )

    def __init__(self, title: str):
        super().__init__(title=title)
        del self.header._children["meta_http"]  # the template declares the charset first


def _heading() -> Element:
    return Element(
        '<header class="iocgis-title">'
        f"<h1>{escape(PAGE_TITLE.vi)}</h1>"
        f'<p lang="en">{escape(PAGE_TITLE.en)}</p>'
        "</header>"
        '<div id="iocgis-status" class="iocgis-status" role="status" hidden></div>'
    )


def build_map(registry: Registry, settings: Settings) -> folium.Map:
    west, south, east, north = PROVINCE_BBOX
    page = Page(title=bilingual(PAGE_TITLE))
    fmap = folium.Map(
        location=[(south + north) / 2, (west + east) / 2],
        zoom_start=8,
        tiles=None,  # works offline; the communes layer is the base map
        # On the map itself, not on a tile layer (there is none): marker clustering needs it.
        minZoom=6,
        maxZoom=18,
        zoomSnap=0.25,  # no tiles to keep sharp, so fit the province snugly on a phone too
    )
    page.add_child(fmap)
    page.html.add_child(_heading(), name="iocgis_heading")

    groups: dict[str, list[FoliumLayer]] = {}
    basemaps: list[FoliumLayer] = []
    if settings.basemap_url:
        basemap = folium.TileLayer(tiles=settings.basemap_url, attr="Bản đồ nền / Basemap",
                                   name="Bản đồ nền trực tuyến / Online basemap", overlay=True)
        fmap.add_child(basemap)
        basemaps.append(basemap)
    relief = ReliefLayer()   # offline: our DEM, with the communes layer drawn over it
    fmap.add_child(relief)
    basemaps.append(relief)
    groups[bilingual(Text("Bản đồ nền", "Basemap"))] = basemaps
    elements: dict[str, FoliumLayer] = {}
    for layer in registry.published():
        element = OgcLayer(layer, VIEWS.get(layer.id, DEFAULT_VIEW))
        fmap.add_child(element)
        elements[layer.id] = element
        theme = THEME_TITLES.get(layer.theme, Text(layer.theme, layer.theme))
        groups.setdefault(bilingual(theme), []).append(element)

    fmap.add_child(GroupedLayerControl(
        groups, exclusive_groups=False,
        # open on a desk or a wall, one tap away on a phone
        collapsed=JsCode("window.matchMedia('(max-width: 768px)').matches"),
    ))
    fmap.add_child(MapSetup([[south, west], [north, east]]))
    fmap.add_child(LeadersControls(elements, {
        "communes_layer": "communes", "default_indicator": DEFAULT_INDICATOR,
        "indicators_url": "/api/indicators", "places_url": "/api/places", "commune_url": "/api/communes/",
        "province_bounds": [[south, west], [north, east]],
    }))
    localize_assets(page)
    return fmap


def localize_assets(root: Element) -> None:
    """Point every folium/branca element under `root` at our local copies (see ASSETS)."""
    stack = [root]
    while stack:
        element = stack.pop()
        if isinstance(element, JSCSSMixin):
            # Instance attributes: the class lists are folium's, shared by every map in the process.
            element.default_js = _local(element.default_js)
            element.default_css = _local(element.default_css)
        stack.extend(element._children.values())
        if isinstance(element, Figure):
            stack.extend((element.header, element.html, element.script))


def _local(assets: list[tuple[str, str]]) -> list[tuple[str, str]]:
    local = []
    for name, _cdn in assets:
        if name not in ASSETS:
            raise LookupError(f"folium asset {name!r} has no local copy: add it to webmap.map.ASSETS")
        path = ASSETS[name]
        if path is not None:
            local.append((name, path))
    return local


def render_page(registry: Registry, settings: Settings) -> str:
    html = build_map(registry, settings).get_root().render()
    leaks = external_urls(html)
    if leaks:
        raise RuntimeError(f"the map page would load assets from outside: {leaks}")
    return html
