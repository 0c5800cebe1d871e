"""pygeoapi's HTML pages under /ogc load nothing from the internet."""

from __future__ import annotations

import re
import urllib.error
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
        requests, failed, errors, statuses = [], [], [], {}
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("response", lambda r: statuses.__setitem__(r.url, r.status))
        page.goto(f"{server}/ogc/collections/schools/items?f=html&limit=50&lang=vi", wait_until="networkidle")
        page.wait_for_selector(".leaflet-interactive, .leaflet-marker-icon", timeout=15_000)
        page.wait_for_selector(".leaflet-tile-loaded", timeout=15_000)
        page.screenshot(path=str(artifacts / "ogc-items.png"))
        browser.close()
    outside = [url for url in requests if not url.startswith(server)]
    assert requests and not outside, outside
    assert not failed and not errors, (failed, errors)
    assert not {url: s for url, s in statuses.items() if s >= 400}, statuses
    # The base map under the features: relief tiles drawn by our server from the DEM.
    relief = [url for url in statuses if "/ogc/relief/" in url]
    assert relief and all(statuses[url] == 200 for url in relief), statuses


def template_messages() -> set[str]:
    """Every {% trans %} message of pygeoapi's HTML templates."""
    from pathlib import Path

    import pygeoapi
    from babel.messages.extract import extract_from_dir

    found = extract_from_dir(str(Path(pygeoapi.__file__).parent / "templates"),
                             method_map=[("**.html", "jinja2.ext:babel_extract")],
                             options_map={"**.html": {"extensions": "jinja2.ext.i18n"}})
    return {message for _file, _line, message, _comments, _context in found}


def test_vietnamese_catalog_covers_every_template_message():
    from babel.messages.pofile import read_po

    from webmap.ogc_html import LOCALE_SOURCE

    with (LOCALE_SOURCE / "vi" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    translated = {m.id for m in catalog if m.id and m.string}
    messages = template_messages()
    assert len(messages) > 100
    assert not messages - translated, sorted(messages - translated)


def page(url: str, headers: dict | None = None) -> tuple[str, str]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return response.headers["Content-Language"], response.read().decode()


@pytest.mark.parametrize(("query", "headers", "language"), [
    ("lang=vi", {}, "vi"), ("lang=en", {}, "en"), ("", {"Accept-Language": "vi-VN,vi;q=0.9"}, "vi"),
    ("", {"Accept-Language": "en-GB,en;q=0.9"}, "en"), ("", {}, "vi"),
], ids=["lang=vi", "lang=en", "accept-vi", "accept-en", "default"])
def test_html_pages_speak_vietnamese_and_english(server, query, headers, language):
    content_language, html = page(f"{server}/ogc/collections?f=html&{query}", headers)
    assert content_language.startswith(language)
    assert f'<html lang="{language}"' in html
    if language == "vi":
        assert "Các tập dữ liệu của dịch vụ này" in html and "Trường học" in html and "Trang chủ" in html
        assert "Data collections in this service" not in html
    else:
        assert "Data collections in this service" in html and "Schools" in html and ">Home<" in html
        assert "Các tập dữ liệu của dịch vụ này" not in html
    _, items = page(f"{server}/ogc/collections/schools/items?f=html&{query}", headers)
    assert ("Các đối tượng trong tập dữ liệu này" in items) == (language == "vi")
    # The menu links the same page in both languages, keeping the rest of the query.
    assert 'href="?f=html&amp;lang=vi">Tiếng Việt</a>' in items and 'href="?f=html&amp;lang=en">English</a>' in items
    # A language asked for with `lang` stays in pygeoapi's own links (breadcrumbs, collections, items).
    links = re.findall(r'href="(http[^"]*/ogc[^"]*)"', html + items)
    own = [link for link in links if "/static/" not in link]
    assert own and all(("lang=" in link) == ("lang=" in query) for link in own), own
    if "lang=" in query:
        assert all(f"lang={language}" in link for link in own), own
        assert f'{server}/ogc/collections/schools?lang={language}"' in html
        assert f"{server}/ogc/collections/schools/items/" in items


def relief_alpha(server: str, z: int, x: int, y: int):
    import warnings

    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    with urllib.request.urlopen(f"{server}/ogc/relief/{z}/{x}/{y}.png", timeout=30) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "image/png"
        assert response.headers["ETag"] and "max-age" in response.headers["Cache-Control"]
        png = response.read()
    with warnings.catch_warnings(), MemoryFile(png) as mem:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)   # a PNG tile carries no georeferencing
        with mem.open() as tile:
            assert (tile.width, tile.height, tile.count) == (256, 256, 4)
            return tile.read(4)


def test_relief_tiles(server):
    city = relief_alpha(server, 10, 807, 446)        # Lào Cai city, on the border: partly drawn
    assert city.max() == 255 and city.min() == 0
    assert relief_alpha(server, 10, 900, 500).max() == 0   # the South China Sea: clear
    for bad in ("10/5000/1.png", "25/0/0.png"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{server}/ogc/relief/{bad}", timeout=30)
        assert err.value.code == 404
        assert "Không có ô bản đồ" in err.value.read().decode()
