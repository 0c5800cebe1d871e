"""`/permits` in headless Chromium: "sa pa" typed without diacritics finds permits in Sa Pa, the
permit is drawn over its zones with the verdict and reasons, an uploaded footprint is checked
through the OGC process, and nothing is fetched from anywhere but our own server."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlsplit

import psycopg
import pytest
from conftest import PASSWORD, ensure_token, ensure_user

from gis_core.zoning import check_permits
from gis_core.zoning.overlays import load_overlays
from webmap.map import external_urls
from webmap.permits import render_permits_page


def test_page_html_is_local_and_vietnamese_first():
    html = render_permits_page()
    assert external_urls(html) == []
    assert '<html lang="vi">' in html
    assert "<title>Kiểm tra giấy phép xây dựng theo quy hoạch / Building permits against the land-use plan" in html
    assert "/vendor/leaflet-draw/dist/leaflet.draw.js" in html and "/vendor/leaflet/dist/leaflet.js" in html
    assert html.index("/vendor/leaflet/dist/leaflet.js") < html.index("/static/iocgis/permits.js")


@pytest.fixture(scope="module")
def checked(demo_url) -> str:
    with psycopg.connect(demo_url) as conn:
        load_overlays(conn)
    check_permits(demo_url, all_permits=True)
    return demo_url


def test_search_api_ignores_diacritics(server, checked):
    viewer = {"Authorization": f"Bearer {ensure_token(checked, 'viewer')}"}   # staff viewers may read
    for q in ("sa pa", "Sa Pa", "SA  PA"):
        request = urllib.request.Request(f"{server}/permits/api/search?q={urllib.request.quote(q)}", headers=viewer)
        with urllib.request.urlopen(request) as r:
            rows = json.load(r)
        assert rows and all(r["commune"] == "Sa Pa" or "sa pa" in r["address"].lower() for r in rows), q
        assert all(r["verdict"] in ("compliant", "needs_review", "non_compliant") for r in rows)



@pytest.mark.slow
def test_permits_page_in_a_browser(browser, server, checked, artifacts, tmp_path):
    # bypass_csp: Playwright's wait_for_function evaluates its predicate with eval(), which our CSP
    # forbids; the pages' own CSP compliance is checked in test_security_headers.py.
    context = browser.new_context(locale="vi-VN", viewport={"width": 1366, "height": 800}, bypass_csp=True)
    page = context.new_page()
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: problems.append(f"failed {r.url}: {r.failure}"))
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    try:
        page.goto(server + "/permits", wait_until="networkidle", timeout=60_000)
        assert "/login" in page.url                                          # planners log in first
        page.fill("#name", ensure_user(checked, "planner"))
        page.fill("#password", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_load_state("networkidle", timeout=60_000)
        assert page.title().startswith("Kiểm tra giấy phép xây dựng")
        assert page.locator(".leaflet-draw-draw-polygon").is_visible()       # drawing a proposal

        page.fill("#permit-q", "sa pa")
        page.press("#permit-q", "Enter")
        page.wait_for_selector("#permit-results li.result", timeout=30_000)
        results = page.locator("#permit-results li.result").all_inner_texts()
        assert results and all("Sa Pa" in text for text in results), results
        page.wait_for_selector("#permit-detail .verdict .badge", timeout=30_000)
        page.wait_for_function("iocgisPermits.state.pending === 0", timeout=30_000)
        page.wait_for_selector("path.permits-focus", timeout=30_000)
        detail = page.locator("#permit-detail").inner_text()
        badge = page.locator("#permit-detail .badge").inner_text()
        assert badge in ("Phù hợp quy hoạch / Compliant", "Cần xem xét / Needs review",
                         "Không phù hợp quy hoạch / Non-compliant")
        assert "Khu / Zone" in detail and "Lý do / Reasons" in detail and "phường Sa Pa" in detail
        assert page.locator("path.permits-zone").count() >= 1
        assert page.locator(".zone-label").count() >= 1

        # Pick a Sa Pa permit that breaks a rule, so the picture shows reasons too.
        with psycopg.connect(checked) as conn:
            bad = conn.execute("""
                SELECT p.id, p.permit_no FROM building_permits p JOIN permit_checks c ON c.permit_id = p.id
                JOIN admin_units a ON a.code = p.commune_code
                WHERE a.name = 'Sa Pa' AND c.verdict = 'non_compliant'
                  AND EXISTS (SELECT 1 FROM jsonb_array_elements(c.reasons) r WHERE r->>'target_kind' = 'zone')
                ORDER BY p.id LIMIT 1""").fetchone()
        page.fill("#permit-q", bad[1])
        page.press("#permit-q", "Enter")
        page.wait_for_function(f"document.querySelector('#permit-detail h2') && "
                               f"document.querySelector('#permit-detail h2').textContent.includes('{bad[1]}')",
                               timeout=30_000)
        page.wait_for_function("iocgisPermits.state.pending === 0", timeout=30_000)
        page.wait_for_timeout(500)
        assert page.locator("#permit-detail .badge").inner_text() == "Không phù hợp quy hoạch / Non-compliant"
        assert page.locator("#permit-detail .reasons li.fail").count() >= 1
        page.screenshot(path=str(artifacts / "permits.png"))

        # A proposal uploaded as GeoJSON, checked through /ogc/processes/zoning-check.
        with psycopg.connect(checked) as conn:
            footprint = conn.execute("SELECT ST_AsGeoJSON(ST_Translate(ST_GeometryN(geom, 1), 0.00005, 0))"
                                     " FROM building_permits WHERE id = %s", (bad[0],)).fetchone()[0]
        upload = tmp_path / "proposal.geojson"
        upload.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": json.loads(footprint)}))
        page.locator("#proposal summary").click()
        page.set_input_files("#proposal-file", str(upload))
        page.wait_for_function("iocgisPermits.state.drawn.getLayers().length === 1", timeout=10_000)
        page.select_option("select[name=intended_use]", "residential")
        page.fill("input[name=floors]", "30")
        page.fill("input[name=height_m]", "99")
        page.click("#proposal-form button[type=submit]")
        page.wait_for_selector("#proposal-result .badge", timeout=30_000)
        page.wait_for_function("iocgisPermits.state.pending === 0", timeout=30_000)
        proposal = page.locator("#proposal-result").inner_text()
        assert "Không phù hợp quy hoạch / Non-compliant" in proposal and "99 m" in proposal
        assert any(u.endswith("/ogc/processes/zoning-check/execution") for u in requests)
        page.screenshot(path=str(artifacts / "permits-proposal.png"))

        assert problems == [], problems
        assert page.evaluate("iocgisPermits.state.failed") == []
        for url in requests:
            parts = urlsplit(url)
            assert parts.scheme in ("data", "blob") or parts.hostname == "127.0.0.1", f"left the machine: {url}"
    finally:
        context.close()
