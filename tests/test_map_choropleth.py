"""The leaders' map: indicator classes and colours, clusters, drill-down and relief from gis_core
and the JSON API; then in headless Chromium the choropleth with its legend, search typed without
diacritics leading into a commune, the shared URL, the phone, and no request leaving 127.0.0.1."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import numpy as np
import psycopg
import pytest

from gis_core import indicators, mapdata
from gis_core.errors import InvalidParameter
from gis_core.registry import Registry
from gis_core.settings import Settings


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.headers, json.load(r)


# -- gis_core, no browser ------------------------------------------------------------------------


def test_palette_reads_red_for_bad_and_green_for_good():
    up = indicators.palette(5, higher_is_better=True)
    down = indicators.palette(5, higher_is_better=False)
    assert up[-1] == down[0] == "#1a9641" and up[0] == down[-1] == "#d7191c"
    assert len(indicators.palette(2, True)) == 2 and indicators.palette(0, True) == []


def test_classes_natural_breaks_and_quantiles():
    rng = np.random.default_rng(1)
    groups = [rng.normal(5, 1, 40), rng.normal(30, 2, 40), rng.normal(80, 3, 19)]
    values = np.concatenate(groups)
    jenks = indicators.classify(values, "natural_breaks", 3)
    # upper bounds: each natural class ends exactly where a group ends
    assert jenks == pytest.approx([g.max() for g in groups])
    quant = indicators.classify(values, "quantiles", 4)
    counts = np.bincount(np.searchsorted(quant, values), minlength=4)
    assert all(20 <= c <= 30 for c in counts)
    # Few distinct values (dengue cases in the dry season): fewer classes, no warning.
    assert indicators.classify(np.array([0.0] * 50 + [1.0] * 3 + [4.0]), "quantiles", 5) == [0.0, 1.0, 4.0]
    with pytest.raises(InvalidParameter):
        indicators.classify(values, "equal_interval", 5)
    with pytest.raises(InvalidParameter):
        indicators.classify(values, "quantiles", 12)


def test_choropleth_of_the_demo_province(demo_url):
    with psycopg.connect(demo_url) as conn:
        defs = {i.code: i for i in indicators.definitions(conn)}
        poverty = defs["poverty_rate"]
        assert len(poverty.periods) == 24 and not poverty.higher_is_better
        data = indicators.choropleth(conn, "poverty_rate", poverty.periods[-1], "natural_breaks", 5)
        earlier = indicators.choropleth(conn, "poverty_rate", poverty.periods[0], "quantiles", 5)
        raw = dict(conn.execute(
            "SELECT unit_code, value::float8 FROM indicator_values WHERE indicator_code = 'poverty_rate'"
            " AND period = %s", (poverty.periods[-2],)).fetchall())
    assert len(data["units"]) == 99 and data["period"] == indicators.period_text(poverty.periods[-1])
    assert data["previous_period"] == indicators.period_text(poverty.periods[-2])
    assert sum(c["count"] for c in data["classes"]) == 99
    classes = data["classes"]
    # lower is better: the lowest class is green, the highest red
    assert classes[0]["color"] == "#1a9641" and classes[-1]["color"] == "#d7191c"
    for unit_code, unit in data["units"].items():
        cls = classes[unit["class"]]
        assert cls["min"] <= unit["value"] <= cls["max"] and unit["color"] == cls["color"]
        assert unit["change"] == pytest.approx(unit["value"] - raw[unit_code], abs=1e-6)
        assert unit["off_target"] == (unit["value"] > 3)
    assert earlier["previous_period"] is None and all(u["change"] is None for u in earlier["units"].values())
    assert data["province"]["code"] == "15" and data["province"]["value"] > 0


def test_clusters_count_every_point_once(demo_url):
    registry = Registry.load(Settings().layers_dir)
    province = mapdata.BBox(103.0, 21.0, 105.5, 23.0)
    with psycopg.connect(demo_url) as conn:
        (total,) = conn.execute("SELECT count(*) FROM incidents").fetchone()
        coarse = mapdata.cluster_points(conn, registry["incidents"], province, 8)
        fine = mapdata.cluster_points(conn, registry["incidents"], province, 11)
        lao_cai = mapdata.cluster_points(conn, registry["incidents"], mapdata.BBox(103.9, 22.4, 104.1, 22.6), 16)
        with pytest.raises(InvalidParameter):
            mapdata.cluster_points(conn, registry["communes"], province, 8)
    assert coarse["total"] == fine["total"] == total
    assert len(coarse["cells"]) < len(fine["cells"]) < 2000 and len(coarse["cells"]) < 100
    singles = [c for c in lao_cai["cells"] if c["count"] == 1]
    assert singles and all(isinstance(c["id"], int) for c in singles)
    assert mapdata.snap_bbox(mapdata.BBox(0.1, 0.1, 0.2, 0.2), 0.25) == mapdata.BBox(0.0, 0.0, 0.25, 0.25)


# -- JSON API ------------------------------------------------------------------------------------


def test_indicator_api(server):
    status, _h, listed = get_json(f"{server}/api/indicators")
    assert status == 200 and {"poverty_rate", "tourist_arrivals"} <= {i["code"] for i in listed}
    period = listed[0]["periods"][-3]
    code = listed[0]["code"]
    _s, _h, data = get_json(f"{server}/api/indicators/{code}/choropleth?period={period}&method=quantiles&k=4")
    assert data["period"] == period and data["method"] == "quantiles" and len(data["classes"]) <= 4
    _s, _h, series = get_json(f"{server}/api/indicators/poverty_rate/series?unit=02647")
    assert series["unit"]["name"] == "Lào Cai" and len(series["values"]) == len(series["province"]) == 24
    for bad in ("/api/indicators/nope/choropleth", "/api/indicators/poverty_rate/choropleth?period=2026-13",
                "/api/indicators/poverty_rate/choropleth?k=x", "/api/layers/incidents/clusters?bbox=1,2,3",
                "/api/communes/99999"):
        with pytest.raises(urllib.error.HTTPError) as err:
            get_json(server + bad)
        assert err.value.code in (400, 404), bad
        assert "description" in json.load(err.value)


def test_commune_drill_down_api_shows_only_public_fields(server):
    _s, _h, data = get_json(f"{server}/api/communes/02647")
    assert data["full_name"] == "Phường Lào Cai" and len(data["indicators"]) == 8
    incidents = data["layers"]["incidents"]
    assert incidents["total"] >= incidents["shown"] > 0
    for feature in incidents["features"]["features"]:
        assert "reporter_name" not in feature["properties"] and "reporter_contact" not in feature["properties"]
    assert data["layers"]["schools"]["shown"] == data["layers"]["schools"]["total"] > 0


def test_relief_is_an_image_of_the_province(server):
    _s, _h, info = get_json(f"{server}/api/relief.json")
    (south, west), (north, east) = info["bounds"]
    assert 103 < west < east < 106 and 21 < south < north < 23.5
    with urllib.request.urlopen(server + info["url"]) as r:
        png = r.read()
        assert r.headers["Content-Type"] == "image/png" and "max-age" in r.headers["Cache-Control"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 600_000


# -- in a real browser ---------------------------------------------------------------------------



class Visit:
    def __init__(self, browser, url: str, **options):
        # bypass_csp: Playwright's wait_for_function evaluates its predicate with eval(), which our CSP
        # forbids; the pages' own CSP compliance is checked in test_security_headers.py.
        self.context = browser.new_context(locale="vi-VN", bypass_csp=True, **options)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("requestfailed", self._failed)
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(f"{r.status} {r.url}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.goto(url, wait_until="networkidle", timeout=90_000)
        self.settle()

    def _failed(self, request):
        # A pan or zoom cancels the cluster request of the view it left: by design, not a failure.
        if "/clusters?" in request.url and "ERR_ABORTED" in (request.failure or ""):
            return
        self.problems.append(f"failed {request.url}: {request.failure}")

    def settle(self):
        self.page.wait_for_function("window.iocgis && iocgis.choroplethShown !== undefined", timeout=60_000)
        self.page.wait_for_function("iocgis.pending === 0", timeout=60_000)
        self.page.wait_for_timeout(400)   # marker animations

    def assert_stayed_home(self):
        assert self.requests
        for url in self.requests:
            parts = urlsplit(url)
            assert parts.scheme in ("data", "blob") or parts.hostname == "127.0.0.1", f"left the machine: {url}"
        assert self.problems == [], self.problems
        assert self.page.evaluate("iocgis.failed") == {}


@pytest.mark.slow
def test_choropleth_with_legend_and_chart(browser, server, artifacts):
    visit = Visit(browser, server + "/", viewport={"width": 1366, "height": 768})
    page = visit.page
    try:
        assert page.evaluate("iocgis.choroplethShown").startswith("poverty_rate@")
        legend = page.locator(".iocgis-legend")
        assert "Tỷ lệ hộ nghèo (%)" in legend.inner_text() and "thấp hơn là tốt hơn" in legend.inner_text()
        assert legend.locator(".iocgis-legend-row").count() == 5
        # the communes are filled with the legend's colours
        legend_colors = page.evaluate("""() => Array.from(document.querySelectorAll('.iocgis-legend-row i'),
            i => getComputedStyle(i).backgroundColor)""")
        fills = set(page.evaluate("""() => Array.from(document.querySelectorAll('path.iocgis-layer-communes'),
            p => p.getAttribute('fill'))"""))
        assert len(fills) == 5 and len(legend_colors) == 5
        # incidents come as server clusters, never as a GeoJSON of every point
        assert any("/api/layers/incidents/clusters?" in u for u in visit.requests)
        assert not any("/ogc/collections/incidents/items?" in u for u in visit.requests)
        assert page.locator(".iocgis-server-cluster").count() > 0
        assert any("/api/relief.png" in u for u in visit.requests)

        # Quantiles for another indicator and period: the URL keeps the choice.
        page.select_option(".iocgis-ind", "tourist_arrivals")
        visit.settle()
        page.select_option(".iocgis-method", "quantiles")
        visit.settle()
        periods = page.locator(".iocgis-period option").evaluate_all("os => os.map(o => o.value)")
        page.select_option(".iocgis-period", periods[3])
        visit.settle()
        assert page.evaluate("iocgis.choroplethShown") == f"tourist_arrivals@{periods[3]}"
        assert "ind=tourist_arrivals" in page.url and "m=quantiles" in page.url and f"p={periods[3]}" in page.url
        assert "cao hơn là tốt hơn" in page.locator(".iocgis-legend").inner_text()

        # Click a commune: the popup has the value, the change and the series chart.
        point = page.evaluate("""() => {
            for (const path of document.querySelectorAll('path.iocgis-layer-communes')) {
                const b = path.getBoundingClientRect(), x = b.left + b.width / 2, y = b.top + b.height / 2;
                if (document.elementFromPoint(x, y) === path) return [x, y];
            }
            return null;
        }""")
        assert point
        page.mouse.move(point[0] - 4, point[1] - 4)
        page.mouse.move(*point, steps=4)
        tooltip = page.locator(".leaflet-tooltip.iocgis-tooltip")
        tooltip.wait_for(timeout=5_000)
        assert "Lượt khách du lịch" in tooltip.inner_text() and "so với" in tooltip.inner_text()
        page.mouse.click(*point)
        page.locator(".iocgis-popup svg.iocgis-chart path.unit").wait_for(state="attached", timeout=10_000)
        assert page.locator(".iocgis-popup svg.iocgis-chart").bounding_box()["height"] > 50
        assert page.locator(".iocgis-popup-ind").inner_text().startswith("Lượt khách du lịch")
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / "map-choropleth-popup.png"))
        page.mouse.click(700, 740)   # close the popup
        page.keyboard.press("Escape")
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / "map-choropleth.png"))
        visit.assert_stayed_home()
    finally:
        visit.context.close()


@pytest.mark.slow
def test_search_without_diacritics_drills_into_a_commune_and_back(browser, server, artifacts):
    visit = Visit(browser, server + "/", viewport={"width": 1366, "height": 768})
    page = visit.page
    try:
        for typed, name in (("lao cai", "Lào Cai"), ("sa pa", "Sa Pa")):
            page.fill(".iocgis-search input", typed)
            page.locator(".iocgis-results li", has_text=name).first.wait_for(timeout=5_000)
        page.fill(".iocgis-search input", "bat xat")
        # the first answer for the new text (the list of the previous one may still be showing)
        page.wait_for_function("""() => { const b = document.querySelector('.iocgis-results li[data-i] b');
            return b && b.textContent === 'Bát Xát'; }""", timeout=5_000)
        first = page.locator(".iocgis-results li[data-i]").first
        zoom_before = page.evaluate("Object.values(window).find(v => v instanceof L.Map).getZoom()")
        first.click()
        page.wait_for_function("iocgis.drilled !== null && iocgis.drilled !== undefined", timeout=10_000)
        visit.settle()
        code = page.evaluate("iocgis.drilled")
        drill = page.locator(".iocgis-drill")
        text = drill.inner_text()
        assert "Bát Xát" in text and "Trường học" in text and "Tỷ lệ hộ nghèo" in text
        assert f"c={code}" in page.url
        assert page.evaluate("Object.values(window).find(v => v instanceof L.Map).getZoom()") > zoom_before
        # the features inside it are on the map
        assert page.locator(".leaflet-marker-icon.iocgis-pin").count() > 0
        page.screenshot(path=str(artifacts / "map-drill-commune.png"))

        # The URL is a shareable view: a fresh browser opened on it shows the same commune.
        shared = page.url
        other = Visit(browser, shared, viewport={"width": 1366, "height": 768})
        try:
            other.page.wait_for_function(f"iocgis.drilled === {json.dumps(code)}", timeout=10_000)
            assert "Bát Xát" in other.page.locator(".iocgis-drill").inner_text()
            other.assert_stayed_home()
        finally:
            other.context.close()

        # Back to the province with the browser's own back button.
        page.go_back()
        page.wait_for_function("iocgis.drilled === null", timeout=10_000)
        assert page.locator(".iocgis-drill").count() == 0 and "c=" not in page.url
        # English switch: the panel speaks English, numbers follow
        page.click(".iocgis-lang")
        assert page.evaluate("document.documentElement.lang") == "en"
        assert "Poverty rate" in page.locator(".iocgis-legend").inner_text() and "lang=en" in page.url
        visit.assert_stayed_home()
    finally:
        visit.context.close()


@pytest.mark.slow
def test_map_on_a_360px_phone(browser, server, artifacts):
    visit = Visit(browser, server + "/", viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page = visit.page
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        for selector in (".iocgis-search input", ".iocgis-collapse", ".leaflet-control-layers-toggle"):
            box = page.locator(selector).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360, selector
            assert box["y"] + box["height"] <= 740, selector
            assert box["height"] >= 36, f"{selector} is too small for a thumb"
        font = page.evaluate("parseFloat(getComputedStyle(document.querySelector('.iocgis-search input')).fontSize)")
        assert font >= 16
        page.screenshot(path=str(artifacts / "map-phone-360.png"))
        page.locator(".iocgis-collapse").tap()
        legend = page.locator(".iocgis-legend")
        legend.wait_for(timeout=5_000)
        box = page.locator(".iocgis-panel").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360
        assert legend.locator(".iocgis-legend-row").count() == 5
        page.screenshot(path=str(artifacts / "map-phone-360-legend.png"))
        visit.assert_stayed_home()
    finally:
        visit.context.close()
