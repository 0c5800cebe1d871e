"""The province map at `/`: its HTML loads nothing from outside our own server, and in a real
browser it draws the demo province's communes and layers from our OGC API."""

from __future__ import annotations

import json
import re
import urllib.request
from urllib.parse import parse_qs, urlsplit

import folium
import pytest
from folium.elements import JSCSSMixin

from gis_core.registry import Registry
from gis_core.settings import PROJECT_ROOT, Settings
from webmap import map as webmap_map

TAG_URL = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["'](?P<url>[^"']+)["']""", re.I)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load(Settings().layers_dir)


@pytest.fixture(scope="module")
def html(registry) -> str:
    return webmap_map.render_page(registry, Settings())


# -- the HTML, no browser ------------------------------------------------------------------------


def test_every_script_and_stylesheet_is_local(html):
    urls = TAG_URL.findall(html)
    assert any(u.startswith("/vendor/leaflet/") for u in urls)
    for url in urls:
        parts = urlsplit(url)
        assert parts.scheme in ("", "data") and not parts.netloc, f"{url} leaves our server"
    assert webmap_map.external_urls(html) == []
    for cdn in ("jsdelivr", "cdnjs", "code.jquery.com", "bootstrapcdn", "unpkg"):
        assert cdn not in html


def test_vendor_urls_point_at_installed_files_of_pinned_packages(html):
    declared = json.loads((PROJECT_ROOT / "package.json").read_text())["dependencies"]
    locked = json.loads((PROJECT_ROOT / "package-lock.json").read_text())["packages"]
    vendor = [u for u in TAG_URL.findall(html) if u.startswith("/vendor/")]
    vendor += [u for u in webmap_map.ASSETS.values() if u and u.startswith("/vendor/")]
    for url in vendor:
        path = url.removeprefix("/vendor/")
        package = "/".join(path.split("/")[:2]) if path.startswith("@") else path.split("/")[0]
        assert package in declared, f"{package} is not in package.json"
        assert re.fullmatch(r"\d+\.\d+\.\d+", declared[package]), f"{package} must be pinned exactly"
        assert locked[f"node_modules/{package}"]["version"] == declared[package]
        assert (Settings().assets_dir / path).is_file(), f"{url}: run `npm install`"


def test_folium_defaults_stay_untouched(html):
    # The page uses instance copies; folium's class lists are shared by every map in the process.
    assert any("cdn.jsdelivr.net" in url for _, url in folium.Map.default_js)


def test_an_unknown_folium_asset_fails_the_build(registry):
    class Plugin(JSCSSMixin, folium.MacroElement):
        default_js = [("brand_new_plugin", "https://cdn.example.invalid/plugin.js")]

    fmap = webmap_map.build_map(registry, Settings())
    fmap.add_child(Plugin())
    with pytest.raises(LookupError, match="brand_new_plugin"):
        webmap_map.localize_assets(fmap.get_root())


def test_page_speaks_vietnamese_first(html, registry):
    assert '<html lang="vi">' in html
    assert "<title>Bản đồ số tỉnh Lào Cai — IOC-GIS / Digital map of Lào Cai province</title>" in html
    assert "<h1>Bản đồ số tỉnh Lào Cai — IOC-GIS</h1>" in html
    assert 'name="viewport"' in html
    # popup labels travel as JSON inside the script: Vietnamese first
    assert json.dumps("Tên trường / Name")[1:-1] in html


def test_layers_come_from_the_ogc_api_and_show_only_public_fields(registry):
    for layer in registry.published():
        view = webmap_map.VIEWS.get(layer.id, webmap_map.DEFAULT_VIEW)
        spec = webmap_map.layer_spec(layer, view)
        assert spec["url"].startswith(f"/ogc/collections/{layer.id}/items?f=json&limit=")
        restricted = {f.name for f in layer.restricted_fields}
        assert not restricted & {p["name"] for p in spec["popup"]}
        query = parse_qs(urlsplit(spec["url"]).query)
        assert not restricted & set(",".join(query.get("properties", [])).split(","))
        for item in spec["popup"]:
            field = layer.field(item["name"])
            assert item["label"] == f"{field.label.vi} / {field.label.en}"
    # A million incidents never travel as GeoJSON: the map asks the server for grid clusters.
    incidents = webmap_map.layer_spec(registry["incidents"], webmap_map.VIEWS["incidents"])
    assert incidents["cluster_url"] == "/api/layers/incidents/clusters" and incidents["cluster_days"] == 30


def test_online_basemap_only_when_configured(registry):
    assert "L.tileLayer" not in webmap_map.render_page(registry, Settings())
    tiles = "https://tiles.example.invalid/{z}/{x}/{y}.png"
    html = webmap_map.render_page(registry, Settings(basemap_url=tiles))
    assert "L.tileLayer" in html and "tiles.example.invalid" in html


def test_basemap_url_is_read_from_the_environment():
    assert Settings.from_env({}).basemap_url is None
    env = {"IOCGIS_BASEMAP_URL": "https://t.example.invalid/{z}/{x}/{y}.png"}
    assert Settings.from_env(env).basemap_url == env["IOCGIS_BASEMAP_URL"]


# -- in a real browser ---------------------------------------------------------------------------



@pytest.fixture(scope="module")
def commune_names(server) -> set[str]:
    with urllib.request.urlopen(f"{server}/ogc/collections/communes/items?f=json&limit=500") as r:
        features = json.load(r)["features"]
    return {f["properties"]["name"] for f in features}


class Visit:
    """One page load with every request the page made, and everything that went wrong."""

    def __init__(self, browser, server: str, **context_options):
        self.context = browser.new_context(locale="vi-VN", **context_options)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed {r.url}: {r.failure}"))
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(f"{r.status} {r.url}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.goto(server + "/", wait_until="networkidle", timeout=90_000)
        self.page.wait_for_function(
            "document.querySelectorAll('path.iocgis-layer-communes').length >= 99", timeout=90_000)
        self.page.wait_for_function("window.iocgis && iocgis.pending === 0", timeout=90_000)
        self.page.wait_for_load_state("networkidle")
        self._wait_until_still()

    def _wait_until_still(self, timeout_ms: int = 10_000):
        """Marker clusters keep animating for a moment after the data arrives: wait until the
        markers stop moving, or hover tests aim at a spot a cluster is about to cover."""
        layout = """() => Array.from(document.querySelectorAll('.leaflet-marker-icon'), e => {
            const r = e.getBoundingClientRect(); return `${Math.round(r.x)},${Math.round(r.y)}`;
        }).join(' ')"""
        previous = None
        for _ in range(timeout_ms // 300):
            current = self.page.evaluate(layout)
            if current == previous:
                return
            previous = current
            self.page.wait_for_timeout(300)
        raise AssertionError("the map never came to rest")

    def close(self):
        self.context.close()


def _assert_stayed_home(visit: Visit, server: str):
    assert visit.requests
    for url in visit.requests:
        parts = urlsplit(url)
        assert parts.scheme in ("data", "blob") or parts.hostname == "127.0.0.1", f"left the machine: {url}"
    assert urlsplit(server).hostname == "127.0.0.1"
    assert visit.problems == [], visit.problems
    assert visit.page.evaluate("iocgis.failed") == {}


@pytest.mark.slow
def test_map_in_a_desktop_browser(browser, server, artifacts, registry, commune_names):
    visit = Visit(browser, server, viewport={"width": 1366, "height": 768})
    page = visit.page
    try:
        _assert_stayed_home(visit, server)
        assert any("/ogc/collections/communes/items" in u for u in visit.requests)
        assert page.title().startswith("Bản đồ số tỉnh Lào Cai")

        loaded = page.evaluate("iocgis.loaded")
        for layer in registry.published():
            if webmap_map.VIEWS.get(layer.id, webmap_map.DEFAULT_VIEW).show:
                assert loaded.get(layer.id, 0) > 0, f"{layer.id} drew nothing"
        assert loaded["communes"] >= 99

        control = page.locator(".leaflet-control-layers").inner_text()
        for layer in registry.published():
            assert layer.title.vi in control
        assert "Hành chính / Administration" in control

        # Hover the first commune whose centre is not covered by a marker: its tooltip names it.
        point = page.evaluate("""() => {
            for (const path of document.querySelectorAll('path.iocgis-layer-communes')) {
                const box = path.getBoundingClientRect();
                const x = box.left + box.width / 2, y = box.top + box.height / 2;
                if (document.elementFromPoint(x, y) === path) return [x, y];
            }
            return null;
        }""")
        assert point, "no commune reachable under the pointer"
        page.mouse.move(point[0] - 4, point[1] - 4)
        page.mouse.move(*point, steps=4)  # one jump from the corner may never raise mouseover
        tooltip = page.locator(".leaflet-tooltip.iocgis-tooltip")
        tooltip.wait_for(timeout=5_000)
        # The first line names the commune; the lines below give the indicator's value and change.
        name = tooltip.locator(".iocgis-tt-name").inner_text().strip()
        assert name in commune_names
        assert "so với" in tooltip.inner_text()
        page.mouse.click(*point)
        page.wait_for_timeout(500)
        popup = page.locator(".leaflet-popup-content .iocgis-popup")
        popup.wait_for(timeout=5_000)
        text = popup.inner_text()
        assert "Tên đầy đủ / Full name" in text and name in text, text

        assert any(re.search(r"[^\x00-\x7f]", n) for n in commune_names)  # diacritics survived
        page.mouse.click(5, 400)  # close the popup for a clean picture
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / "map.png"))
    finally:
        visit.close()


@pytest.mark.slow
def test_map_on_a_phone(browser, server, artifacts, registry):
    visit = Visit(browser, server, viewport={"width": 360, "height": 740}, is_mobile=True,
                  has_touch=True)
    page = visit.page
    try:
        _assert_stayed_home(visit, server)
        box = page.locator(".folium-map").bounding_box()
        assert box and box["x"] == 0 and box["y"] == 0
        assert box["width"] == 360 and box["height"] == 740
        assert page.evaluate("document.documentElement.scrollWidth") <= 360

        toggle = page.locator(".leaflet-control-layers-toggle")
        assert toggle.is_visible()
        tb = toggle.bounding_box()
        assert tb and tb["x"] >= 0 and tb["x"] + tb["width"] <= 360 and tb["y"] + tb["height"] <= 740
        page.screenshot(path=str(artifacts / "map-phone.png"))

        toggle.tap()
        control = page.locator(".leaflet-control-layers-expanded")
        control.wait_for(timeout=5_000)
        for layer in registry.published():
            assert page.get_by_text(layer.title.vi, exact=False).first.is_visible()
        cb = control.bounding_box()
        assert cb and cb["x"] >= 0 and cb["x"] + cb["width"] <= 360
        page.screenshot(path=str(artifacts / "map-phone-layers.png"))
    finally:
        visit.close()


@pytest.mark.slow
def test_map_outlines_unacknowledged_alerts(browser, server, demo_url):
    import uuid

    import psycopg

    rule = f"test_map_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(demo_url, autocommit=True) as conn:
        conn.execute("INSERT INTO alert_rules (code, kind, name_vi, name_en, severity, params) VALUES"
                     " (%s, 'open_incidents', 'Thử cảnh báo', 'Test alert', 'warning', '{}')", (rule,))
        conn.execute("INSERT INTO alerts (rule_code, severity, reason_vi, reason_en, communes, fingerprint) VALUES"
                     " (%s, 'warning', 'Tồn đọng phản ánh tại Bát Xát', 'Report backlog in Bát Xát',"
                     " ARRAY(SELECT code FROM communes WHERE name = 'Bát Xát'), %s)", (rule, rule))
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    try:
        page.goto(f"{server}/", wait_until="networkidle")
        page.wait_for_function("rule => window.iocgis && iocgis.alertLayer && iocgis.alertLayer.getLayers()"
                               ".some(l => l.feature.properties.rule === rule)", arg=rule, timeout=20_000)
        page.locator("path.iocgis-alert").first.wait_for(timeout=10_000)
        assert page.locator("path.iocgis-alert").first.get_attribute("stroke") == "#dc2626"
        # Other alerts may be active too: open ours (its edge is too thin to click reliably).
        page.evaluate("rule => iocgis.alertLayer.getLayers().find(l => l.feature.properties.rule === rule)"
                      ".openPopup()", rule)
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5_000)
        assert "Tồn đọng phản ánh tại Bát Xát" in popup.inner_text()
    finally:
        page.close()
        with psycopg.connect(demo_url, autocommit=True) as conn:
            conn.execute("DELETE FROM alert_rules WHERE code = %s", (rule,))
