"""Security headers on every kind of response of the running server, and no traceback ever: an
unexpected exception becomes a bilingual 500 (a lost database a 503) without internals."""

from __future__ import annotations

import urllib.error
import urllib.request

import psycopg
import pytest
from conftest import ensure_token

from gis_core.settings import Settings
from webmap import create_app
from webmap.security import page_csp


def get(url: str, accept: str = "*/*", token: str | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept,
                                                   **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


ROUTES = [
    ("/", "text/html"),
    ("/wall", "text/html"),
    ("/permits", "text/html"),
    ("/incidents", "text/html"),
    ("/track", "text/html"),
    ("/api/indicators", "application/json"),
    ("/api/places?q=lao", "application/json"),
    ("/ogc/collections?f=json", "application/json"),
    ("/ogc/collections/schools/items?f=html&limit=2", "text/html"),
    ("/ogc/collections/schools/items?limit=2", "application/geo+json"),
    ("/vendor/leaflet/dist/leaflet.js", "text/javascript"),
    ("/no/such/page", "text/html"),
    ("/admin/audit", "application/json"),        # refused (401): refusals carry the headers too
]
GUARDED = {"/permits", "/incidents"}             # read with an administrator's API token


@pytest.mark.parametrize(("path", "mimetype"), ROUTES)
def test_every_response_carries_the_headers(server, demo_url, path, mimetype):
    status, headers, _ = get(server + path, token=ensure_token(demo_url, "admin") if path in GUARDED else None)
    assert status == (404 if path.startswith("/no/") else 401 if path.startswith("/admin") else 200), path
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    if path in GUARDED or path.startswith("/admin"):
        assert headers["cache-control"] == "no-store"           # staff pages: never in a shared cache
    assert "camera=()" in headers["permissions-policy"]
    csp = headers["content-security-policy"]
    if headers["content-type"].startswith("text/html"):
        assert "frame-ancestors 'self'" in csp and "object-src 'none'" in csp and "script-src 'self'" in csp
        assert "http" not in csp   # no CDN or other origin allowed without an online base map
    else:
        assert csp.startswith("default-src 'none'")


def test_online_basemap_host_is_allowed_for_images_only():
    csp = page_csp("https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: blob: https://*.tile.openstreetmap.org;" in csp
    assert csp.count("openstreetmap") == 1


@pytest.fixture
def app(demo_url, tmp_root):
    application = create_app(Settings(database_url=demo_url, var_dir=tmp_root / "var"))

    def boom():
        raise ValueError("SELECT secret FROM internals WHERE password = 'hunter2'")

    def lost():
        raise psycopg.OperationalError("server closed the connection unexpectedly at 10.0.0.5:5432")

    application.add_url_rule("/api/boom", "boom", boom)
    application.add_url_rule("/boom", "boom_page", boom)
    application.add_url_rule("/api/lost", "lost", lost)
    yield application
    application.extensions["iocgis"]["db"].close()


def test_unexpected_errors_show_no_internals(app):
    client = app.test_client()
    api = client.get("/api/boom")
    assert api.status_code == 500 and api.is_json
    assert set(api.json) == {"code", "description"} and "/" in api.json["description"]
    page = client.get("/boom", headers={"Accept": "text/html"})
    assert page.status_code == 500 and page.mimetype == "text/html"
    assert "Đã xảy ra lỗi" in page.text and "Something went wrong" in page.text
    lost = client.get("/api/lost")
    assert lost.status_code == 503 and lost.headers["Retry-After"] and lost.json["code"] == "ServiceUnavailable"
    for response in (api, page, lost):
        body = response.get_data(as_text=True)
        for secret in ("SELECT", "hunter2", "Traceback", "10.0.0.5", "ValueError", "psycopg"):
            assert secret not in body
        assert response.headers["X-Content-Type-Options"] == "nosniff"


CSP_PAGES = ["/", "/wall", "/permits", "/incidents", "/track", "/ogc?f=html",
             "/ogc/collections/schools/items?f=html&limit=5", "/ogc/collections/incidents?f=html"]
# Not /ogc/openapi?f=html: Swagger UI comes from a CDN that the closed network drops (webmap/ogc_html.py),
# so that page has no script to run with or without a CSP.


@pytest.mark.slow
def test_pages_run_under_their_csp_in_a_browser(server):
    """The other browser tests bypass CSP (Playwright's waits use eval); here every page is loaded with
    the policy on and must raise no violation and no script error."""
    from conftest import CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = chromium.new_context(locale="vi-VN", viewport={"width": 1600, "height": 900})
            context.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation',"
                                    " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")
            for path in CSP_PAGES:
                page = context.new_page()
                problems: list[str] = []
                page.on("pageerror", lambda e, problems=problems: problems.append(f"script error: {e}"))
                page.on("console", lambda m, problems=problems: m.type == "error" and "Security Policy" in m.text
                        and problems.append(m.text))
                page.goto(server + path, wait_until="networkidle")
                page.wait_for_timeout(1500 if path != "/wall" else 6000)   # the wall polls and rotates
                problems += page.evaluate("window.__csp")
                assert not problems, f"{path}: {problems}"
                page.close()
        finally:
            chromium.close()
