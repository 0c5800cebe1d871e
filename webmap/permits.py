"""`/permits`: planners find a permit (number, address or commune, with or without diacritics), see
it over the zones and overlays of the plan in force when it was applied for, read the verdict and
its reasons, and check a proposal drawn on the map or uploaded as GeoJSON (through the OGC API
process `zoning-check`). Everything is served from our own host: folium's assets go through
webmap.map's ASSETS table and the finished page through its external-URL check."""

from __future__ import annotations

import datetime as dt

import folium
import shapely
from branca.element import Element, MacroElement
from flask import Blueprint, Response, current_app, jsonify, request
from folium.template import Template
from markupsafe import escape

from gis_core.errors import InvalidParameter
from gis_core.ogc_config import PROVINCE_BBOX
from gis_core.registry import Text
from gis_core.zoning.lookup import context, permit_detail, search_permits

from .auth import guard
from .map import Page, bilingual, external_urls, localize_assets

blueprint = Blueprint("permits", __name__)
guard(blueprint, "permits")  # planners (and staff viewers, read only): gis_core/auth/rules.py

TITLE = Text("Kiểm tra giấy phép xây dựng theo quy hoạch", "Building permits against the land-use plan")
# Our own files and leaflet-draw (npm, pinned in package.json), all served by this app.
SCRIPTS = ("/vendor/leaflet-draw/dist/leaflet.draw.js", "/static/iocgis/permits.js")
STYLES = ("/vendor/leaflet-draw/dist/leaflet.draw.css", "/static/iocgis/permits.css")
USES = (("residential", "Nhà ở", "Housing"), ("commercial", "Thương mại, dịch vụ", "Commerce"),
        ("office", "Văn phòng", "Offices"), ("hotel", "Khách sạn", "Hotel"), ("school", "Trường học", "School"),
        ("clinic", "Cơ sở y tế", "Health facility"), ("public", "Công trình công cộng", "Public building"),
        ("industry", "Công nghiệp", "Industry"), ("warehouse", "Kho bãi", "Warehousing"),
        ("agriculture", "Nông nghiệp", "Agriculture"), ("religious", "Tôn giáo", "Religious"))


class PermitsSetup(MacroElement):
    _template = Template(
        """
        {% macro script(this, kwargs) %}
            iocgisPermits.setup({{ this._parent.get_name() }}, {{ this.bounds|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, bounds: list[list[float]]):
        super().__init__()
        self._name = "PermitsSetup"
        self.bounds = bounds


def _panel() -> str:
    options = "".join(f'<option value="{u}">{escape(vi)} / {escape(en)}</option>' for u, vi, en in USES)
    return f"""
<aside id="permits-panel" class="permits-panel">
  <header><h1>{escape(TITLE.vi)}</h1><p lang="en">{escape(TITLE.en)}</p></header>
  <form id="permit-search" role="search">
    <label for="permit-q">Tìm giấy phép (số, địa chỉ, xã/phường) / Find a permit (number, address, commune)</label>
    <div class="row"><input id="permit-q" name="q" type="search" autocomplete="off"
      placeholder="vd. Sa Pa, GPXD-2026-000123">
    <button type="submit">Tìm / Search</button></div>
  </form>
  <ol id="permit-results" class="results" aria-live="polite"></ol>
  <section id="permit-detail" class="detail" hidden></section>
  <details id="proposal">
    <summary>Kiểm tra phương án mới / Check a proposal</summary>
    <p class="hint">Vẽ mặt bằng trên bản đồ (công cụ đa giác) hoặc tải tệp GeoJSON.<br>
      <span lang="en">Draw the footprint on the map (polygon tool) or upload a GeoJSON file.</span></p>
    <form id="proposal-form">
      <label>Tệp GeoJSON / GeoJSON file <input id="proposal-file" type="file" accept=".geojson,.json"></label>
      <label>Mục đích / Use <select name="intended_use">{options}</select></label>
      <label>Số tầng / Floors <input name="floors" type="number" min="1" max="100" value="3" required></label>
      <label>Chiều cao (m) / Height (m)
        <input name="height_m" type="number" min="0.1" step="0.1" value="12" required></label>
      <label>Diện tích thửa (m²) / Parcel (m²) <input name="parcel_area_m2" type="number" min="1" step="0.1"></label>
      <label>Ngày nộp / Applied on <input name="applied_on" type="date"></label>
      <button type="submit">Kiểm tra / Check</button>
    </form>
    <section id="proposal-result" class="detail" hidden></section>
  </details>
  <footer class="legend">
    <span class="swatch compliant"></span>Phù hợp / Compliant
    <span class="swatch needs_review"></span>Cần xem xét / Needs review
    <span class="swatch non_compliant"></span>Không phù hợp / Non-compliant
  </footer>
</aside>"""


def render_permits_page() -> str:
    west, south, east, north = PROVINCE_BBOX
    page = Page(title=bilingual(TITLE))
    fmap = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=8, tiles=None,
                      minZoom=6, maxZoom=20, zoomSnap=0.25)
    page.add_child(fmap)
    page.header.add_child(Element('<meta name="viewport" content="width=device-width, initial-scale=1">'),
                          name="viewport")
    for url in STYLES:
        page.header.add_child(Element(f'<link rel="stylesheet" href="{url}">'))
    page.html.add_child(Element(_panel()), name="permits_panel")
    fmap.add_child(PermitsSetup([[south, west], [north, east]]))
    # folium's own scripts through the shared ASSETS table, ours after them (they need Leaflet).
    localize_assets(page)
    html = page.render()
    tags = "".join(f'<script src="{url}"></script>' for url in SCRIPTS)
    html = html.replace("</head>", f"{tags}\n</head>", 1)
    leaks = external_urls(html)
    if leaks:
        raise RuntimeError(f"the permits page would load assets from outside: {leaks}")
    return html


def _iso(value):
    """Dates as ISO 8601 (Flask would write them as HTTP dates)."""
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso(v) for v in value]
    return value.isoformat() if isinstance(value, dt.date) else value


def _db():
    return current_app.extensions["iocgis"]["db"]


@blueprint.route("/permits")
def page():
    state = current_app.extensions["iocgis"]
    html = state.get("permits_html")
    if html is None:
        html = state["permits_html"] = render_permits_page()
    return Response(html, mimetype="text/html")


@blueprint.route("/permits/api/search")
def api_search():
    raw = request.args.get("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidParameter(f"limit phải là số nguyên, không phải {raw!r}.",
                               f"limit must be a whole number, not {raw!r}.") from None
    with _db().connection() as conn:
        return jsonify(_iso(search_permits(conn, request.args.get("q", ""), limit)))


@blueprint.route("/permits/api/<int:permit_id>")
def api_permit(permit_id: int):
    with _db().connection() as conn:
        return jsonify(_iso(permit_detail(conn, permit_id)))


@blueprint.route("/permits/api/around")
def api_around():
    """Zones, overlays and permits in a box (a proposal's surroundings): bbox=w,s,e,n&day=YYYY-MM-DD."""
    try:
        west, south, east, north = (float(v) for v in request.args.get("bbox", "").split(","))
        day = dt.date.fromisoformat(request.args["day"]) if request.args.get("day") else dt.date.today()
    except (ValueError, KeyError):
        raise InvalidParameter("bbox phải là 4 số w,s,e,n; day dạng YYYY-MM-DD.",
                               "bbox must be four numbers w,s,e,n; day a YYYY-MM-DD date.") from None
    if not (west < east and south < north and east - west < 0.1 and north - south < 0.1):
        raise InvalidParameter("bbox không hợp lệ hoặc quá lớn (tối đa 0,1°).",
                               "bbox is invalid or too large (0.1° max).")
    with _db().connection() as conn:
        return jsonify(context(conn, shapely.box(west, south, east, north), day, pad=0.002))
