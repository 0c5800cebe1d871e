"""pygeoapi's HTML pages under /ogc load nothing from the internet."""

from __future__ import annotations

import re
import urllib.request

import pytest
from conftest import CHROMIUM_ARGS

from webmap.ogc_html import localise

PAGES = ["", "/collections", "/collections/communes", "/collections/schools/items", "/collections/schools/queryables",
         "/collections/schools/tiles", "/conformance"]
# What a browser would fetch: scripts, stylesheets and icons (a rel=about link fetches nothing).
EXTERNAL = re.compile(r"""<script\b[^>]*src=["']https?://(?!127\.0\.0\.1)[^"']+["']"""
                      r"""|<link\b(?=[^>]*rel=["']?(?:stylesheet|icon|shortcut icon))[^>]*href=["']https?://(?!127\.0\.0\.1)""",
                      re.I)


def test_known_cdn_assets_become_local_and_others_are_dropped():
    html = ('<link rel="stylesheet" href="https://unpkg.com/leaflet@1.3.1/dist/leaflet.css">'
            '<script src="https://unpkg.com/leaflet@1.3.1/dist/leaflet.js"></script>'
            '<script src="https://unpkg.com/swagger-ui-dist/swagger-ui-bundle.js"></script>'
            '<link rel="alternate" href="https://example.org/x.json">'
            '<script src="http://127.0.0.1:8080/ogc/static/x.js"></script>')
    out = localise(html, "http://127.0.0.1:8080")
    assert 'href="/vendor/leaflet/dist/leaflet.css"' in out and 'src="/vendor/leaflet/dist/leaflet.js"' in out
    assert "swagger-ui-bundle.js -->" in out and "<script src=\"https://unpkg.com" not in out
    assert '<link rel="alternate" href="https://example.org/x.json">' in out
    assert 'src="http://127.0.0.1:8080/ogc/static/x.js"' in out


@pytest.mark.parametrize("path", PAGES)
def test_html_pages_have_no_external_assets(server, path):
    with urllib.request.urlopen(f"{server}/ogc{path}?f=html", timeout=30) as response:
        assert response.status == 200
        html = response.read().decode()
    assert not EXTERNAL.findall(html)


@pytest.mark.slow
def test_items_page_in_a_browser_stays_home(server, artifacts):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests, failed, errors = [], [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server}/ogc/collections/schools/items?f=html&limit=50", wait_until="networkidle")
        page.wait_for_selector(".leaflet-interactive, .leaflet-marker-icon", timeout=15_000)
        page.screenshot(path=str(artifacts / "ogc-items.png"))
        browser.close()
    outside = [url for url in requests if not url.startswith(server)]
    assert requests and not outside, outside
    assert not failed and not errors, (failed, errors)
