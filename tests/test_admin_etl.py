"""/admin/etl against a real load into a fresh database: the runs with their counts, a run's rejects
(row, field, reason in Vietnamese and English) and repairs, filters and paging, the re-run button
making a new run (and refused without the session's anti-forgery token), a bad run id answered
with a bilingual 404, stewards only, and the page in headless Chromium (logging in through the
login form) fetching nothing beyond 127.0.0.1."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from conftest import CHROMIUM_ARGS, PASSWORD, ensure_user, log_in_client
from test_etl_files import OUTSIDE, SCHOOLS, copy_boundaries, frame, school
from werkzeug.serving import make_server

from etl.pipeline import run_source
from etl.sources import load_sources
from gis_core.registry import Registry
from gis_core.settings import Settings
from webmap import create_app
from webmap.auth import CSRF_FIELD

REGISTRY = Registry.load(Settings().layers_dir)


@pytest.fixture
def loaded(db_url, demo_url, tmp_path) -> tuple[str, Path, int]:
    """A declared file source, run once for real: three good schools, one outside the province,
    one with a level not in the code list."""
    copy_boundaries(demo_url, db_url)
    rows = [*SCHOOLS, school("TH-900", "Trường ngoài tỉnh", *OUTSIDE),
            school("TH-901", "Trường cấp lạ", 103.97, 22.47, level="university")]
    frame(rows).to_file(tmp_path / "truong.geojson", driver="GeoJSON")
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "truong_thu.yml").write_text(
        "name: truong_thu\nlayer: schools\nkind: file\npath: ../truong.geojson\nkey: [code]\ntag: thu\n",
        encoding="utf-8")
    result = run_source(db_url, REGISTRY, load_sources(sources)["truong_thu"])
    assert (result.inserted, result.rejected) == (3, 2), result.summary()
    return db_url, sources, result.run_id


@pytest.fixture
def app(loaded, tmp_path):
    url, sources, _ = loaded
    app = create_app(Settings(database_url=url, var_dir=tmp_path / "var"))
    app.config["IOCGIS_ETL_SOURCES"] = str(sources)
    yield app
    app.extensions["iocgis"]["db"].close()


def steward(app, loaded):
    """A test client logged in as a data steward, and its session's CSRF token."""
    client = app.test_client()
    return client, log_in_client(client, loaded[0], "steward")


def test_only_stewards_and_admins(app, loaded):
    anonymous = app.test_client().get("/admin/etl", headers={"Accept": "text/html"})
    assert anonymous.status_code == 303 and anonymous.headers["Location"].startswith("/login?next=/admin/etl")
    for role, status in (("viewer", 403), ("planner", 403), ("operator", 403), ("steward", 200), ("admin", 200)):
        client = app.test_client()
        log_in_client(client, loaded[0], role)
        assert client.get("/admin/etl").status_code == status, role


def run_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM etl_runs").fetchone()[0]


def test_runs_page_lists_the_real_run_with_its_counts(app, loaded):
    _, _, run_id = loaded
    client, _ = steward(app, loaded)
    r = client.get("/admin/etl")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert '<html lang="vi">' in html
    assert html.index("Các lần chạy ETL") < html.index("ETL runs")          # Vietnamese first
    row = re.search(rf'<tr class="run" data-run="{run_id}">(.*?)</tr>', html, re.S)
    assert row, html
    cells = [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.S)]
    assert cells[0] == f"#{run_id}" and cells[1] == "Thành công / Succeeded"
    assert cells[2:4] == ["schools", "truong_thu"]
    assert cells[5:] == ["5", "3", "0", "0", "0", "2", "0"]
    assert 'data-source="truong_thu"' in html and "/vendor/bootstrap/dist/css/bootstrap.min.css" in html
    assert "http://" not in html.replace("http://localhost", "") and "https://" not in html

    # Filters and paging (keyset, newest first).
    assert f'data-run="{run_id}"' not in client.get("/admin/etl?status=failed").get_data(as_text=True)
    assert f'data-run="{run_id}"' in client.get("/admin/etl?layer=schools&source=truong_thu").get_data(as_text=True)
    assert f'data-run="{run_id}"' not in client.get("/admin/etl?layer=clinics").get_data(as_text=True)
    assert f'data-run="{run_id}"' not in client.get(f"/admin/etl?before={run_id}").get_data(as_text=True)
    bad = client.get("/admin/etl?status=nope")
    assert bad.status_code == 400 and "Trạng thái không hợp lệ" in bad.get_data(as_text=True)


def test_run_page_shows_rejects_and_reasons_in_both_languages(app, loaded):
    _, _, run_id = loaded
    html = steward(app, loaded)[0].get(f"/admin/etl/runs/{run_id}").get_data(as_text=True)
    rejects = re.findall(r'<tr class="reject">(.*?)</tr>', html, re.S)
    assert len(rejects) == 2
    outside = next(r for r in rejects if "ngoài tỉnh" in r)
    assert re.search(r'<td class="num">4</td>', outside) and "<code>geom</code>" in outside
    assert "Vị trí nằm ngoài tỉnh" in outside and "Location is" in outside and "outside the province" in outside
    assert "TH-900" in outside                                                # the row as read
    level = next(r for r in rejects if "danh mục" in r)
    assert re.search(r'<td class="num">5</td>', level) and "<code>level</code>" in level
    assert "not in the code list" in level and "university" in level
    assert "Không có dòng nào phải sửa." in html
    assert 'id="rerun"' in html                                               # a declared source


def test_rerun_button_makes_a_new_run_and_needs_its_token(app, loaded):
    url, _, run_id = loaded
    client, csrf = steward(app, loaded)
    assert client.get(f"/admin/etl/runs/{run_id}").status_code == 200
    before = run_count(url)

    refused = client.post("/admin/etl/sources/truong_thu/run", data={})
    assert refused.status_code == 403 and "CSRF" in refused.get_data(as_text=True)
    forged = client.post("/admin/etl/sources/truong_thu/run", data={CSRF_FIELD: "x" * 43})
    assert forged.status_code == 403
    cross = client.post("/admin/etl/sources/truong_thu/run", data={CSRF_FIELD: csrf},
                        headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert run_count(url) == before

    r = client.post("/admin/etl/sources/truong_thu/run", data={CSRF_FIELD: csrf},
                    headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 303
    new_id = int(urlsplit(r.headers["Location"]).path.rsplit("/", 1)[1])
    assert new_id > run_id and run_count(url) == before + 1
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    heading = " ".join(re.sub(r"<[^>]+>", " ", re.search(r"<h1.*?</h1>", page, re.S)[0]).split())
    assert heading == f"Lần chạy #{new_id} Run #{new_id} Không thay đổi / Unchanged"   # same file: nothing changed
    assert "Nothing changed" in page and len(re.findall(r'<tr class="reject">', page)) == 2

    unknown = client.post("/admin/etl/sources/khong_co/run", data={CSRF_FIELD: csrf})
    assert unknown.status_code == 404 and "There is no declared source" in unknown.get_data(as_text=True)


def test_an_adhoc_load_is_rerun_from_its_run_while_its_file_is_there(app, loaded, tmp_path):
    """`iocgis etl load` keeps its layer, file and options with the run; the page runs it again."""
    from etl.sources import Source

    url, _, declared_run = loaded
    path = tmp_path / "them.geojson"
    frame([school("TH-777", "Trường Tiểu học Bắc Hà", 103.975, 22.47)]).to_file(path, driver="GeoJSON")
    first = run_source(url, REGISTRY, Source.adhoc("schools", path, crs="EPSG:4326", tag="tay"))
    assert first.inserted == 1
    with psycopg.connect(url) as conn:
        kept = conn.execute("SELECT request FROM etl_runs WHERE id = %s", (first.run_id,)).fetchone()[0]
    assert kept == {"layer": "schools", "path": str(path.resolve()), "crs": "EPSG:4326", "snapshot": False,
                    "tag": "tay", "encoding": None}

    client, csrf = steward(app, loaded)
    page = client.get(f"/admin/etl/runs/{first.run_id}").get_data(as_text=True)
    assert 'id="rerun-load"' in page and str(path) in page and 'id="rerun"' not in page
    before = run_count(url)
    assert client.post(f"/admin/etl/runs/{first.run_id}/rerun", data={}).status_code == 403
    # The file changed since: the re-run loads what is there now, with the same options.
    frame([school("TH-777", "Trường Tiểu học Bắc Hà", 103.975, 22.47, students=301)]).to_file(path, driver="GeoJSON")
    r = client.post(f"/admin/etl/runs/{first.run_id}/rerun", data={CSRF_FIELD: csrf})
    assert r.status_code == 303 and run_count(url) == before + 1
    again = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "status-succeeded" in again and 'id="rerun-load"' in again
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT students, source FROM schools WHERE code = 'TH-777'").fetchone() == (301, "tay")
        # The audit trail names the steward who pressed the button, and the run that wrote the row.
        rerun_id = int(r.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
        assert conn.execute("SELECT actor FROM audit_log WHERE table_name = 'schools' AND etl_run = %s",
                            (rerun_id,)).fetchall() == [(f"user:{ensure_user(url, 'steward')}",)]

    # A declared source's run kept no request: it is re-run by name, not here.
    assert client.post(f"/admin/etl/runs/{declared_run}/rerun", data={CSRF_FIELD: csrf}).status_code == 404

    path.unlink()
    page = client.get(f"/admin/etl/runs/{first.run_id}").get_data(as_text=True)
    assert "không còn nữa" in page and "no longer there" in page and 'id="rerun-load"' not in page
    gone = client.post(f"/admin/etl/runs/{first.run_id}/rerun", data={CSRF_FIELD: csrf})
    html = gone.get_data(as_text=True)
    assert gone.status_code == 409 and "không còn nữa" in html and "is no longer there" in html
    assert html.index("không còn nữa") < html.index("is no longer there") and str(path) in html
    assert run_count(url) == before + 1


@pytest.mark.parametrize("bad", ["999999", "abc", "-1", "9" * 30])
def test_bad_run_id_is_a_bilingual_404(app, loaded, bad):
    r = steward(app, loaded)[0].get(f"/admin/etl/runs/{bad}")
    assert r.status_code == 404 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert "Không có lần chạy ETL" in html and "There is no ETL run" in html
    assert html.index("Không có lần chạy ETL") < html.index("There is no ETL run")
    assert "Traceback" not in html


@pytest.fixture
def live(app):
    """The app on 127.0.0.1 in a thread, for the browser."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(10)


@pytest.mark.slow
def test_admin_pages_in_headless_chromium(live, loaded, artifacts):
    from playwright.sync_api import sync_playwright

    _, _, run_id = loaded
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="vi-VN", viewport={"width": 1366, "height": 900}).new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
            page.on("requestfailed", lambda r: problems.append(f"failed {r.url}: {r.failure}"))
            page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
            page.goto(f"{live}/admin/etl", wait_until="networkidle")
            assert "/login" in page.url                       # not logged in: the login form first
            page.fill("#name", ensure_user(loaded[0], "steward"))
            page.fill("#password", PASSWORD)
            page.click("#login-form button[type=submit]")
            page.wait_for_load_state("networkidle")
            assert page.url.endswith("/admin/etl") and page.title().startswith("Quản trị ETL")
            # Bootstrap applied: the table has its styles from our /vendor.
            assert page.evaluate("getComputedStyle(document.querySelector('#runs')).borderCollapse") == "collapse"
            assert page.locator(f'tr.run[data-run="{run_id}"]').is_visible()
            page.screenshot(path=str(artifacts / "admin_etl_runs.png"), full_page=True)

            # The re-run button, as a steward presses it: a new run, unchanged.
            page.click('tr[data-source="truong_thu"] button[type="submit"]')
            page.wait_for_load_state("networkidle")
            assert re.search(r"/admin/etl/runs/\d+$", page.url) and not page.url.endswith(f"/{run_id}")
            assert "Không thay đổi" in page.locator("h1").inner_text()

            page.goto(f"{live}/admin/etl/runs/{run_id}", wait_until="networkidle")
            assert page.locator("tr.reject").count() == 2
            assert page.locator("tr.reject .reason-en").first.is_visible()
            page.screenshot(path=str(artifacts / "admin_etl_run.png"), full_page=True)
        finally:
            browser.close()
    assert requests
    for url in requests:
        parts = urlsplit(url)
        assert parts.scheme in ("data", "blob") or parts.hostname == "127.0.0.1", f"left the machine: {url}"
    assert problems == [], problems


def test_no_sql_in_the_blueprint():
    text = (Path(__file__).resolve().parents[1] / "webmap" / "admin_etl.py").read_text(encoding="utf-8")
    assert not re.search(r"\b(SELECT|INSERT|UPDATE|DELETE)\b", text)
