"""The video wall: its numbers match the database, it fills a 4K screen with KPI tiles, rotates
themes by itself, shows a new incident without a reload, and loads nothing from outside."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from urllib.parse import urlsplit

import psycopg
import pytest
from conftest import ensure_token

from gis_core import wall

POLL_S = 2


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def test_summary_matches_the_database(demo_url):
    now = dt.datetime.now(dt.UTC)
    with psycopg.connect(demo_url) as conn:
        data = wall.summary(conn, now)
        open_n, overdue = conn.execute(
            "SELECT count(*) FILTER (WHERE status NOT IN ('resolved', 'closed', 'rejected')),"
            " count(*) FILTER (WHERE status NOT IN ('resolved', 'closed', 'rejected') AND due_at < %s)"
            " FROM incidents", (now,)).fetchone()
        offline, total = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'offline'), count(*) FROM cameras").fetchone()
        feed = wall.incident_feed(conn)
        after = wall.incident_feed(conn, after=feed["last_id"])
    assert data["incidents"]["open"] == open_n > 0 and data["incidents"]["overdue"] == overdue
    assert data["cameras"]["offline"] == offline and data["cameras"]["total"] == total
    assert data["permits"]["source"] in ("permit_checks", "zone_height_floors_rule") and data["permits"]["count"] >= 0
    targets = data["indicators"]
    assert targets["with_target"] == 4 and 0 <= targets["off_target"] <= 4
    assert len(feed["incidents"]) == wall.FEED_LIMIT and after["incidents"] == []
    times = [i["reported_at"] for i in feed["incidents"]]
    assert times == sorted(times, reverse=True)



def _insert_incident(demo_url: str) -> tuple[str, int]:
    """A proper citizen report inside Lào Cai ward, marked as test data."""
    ticket = f"TEST-WALL-{uuid.uuid4().hex[:10].upper()}"
    with psycopg.connect(demo_url) as conn:
        (ident,) = conn.execute(
            """INSERT INTO incidents (ticket_code, category, source, status, reported_at, due_at, commune_code,
                                      description, data_source, geom)
               SELECT %s, 'flood', 'citizen', 'new', now(), now() + interval '2 days', code,
                      'Ngập cục bộ sau mưa lớn (kiểm thử màn hình điều hành)', 'test', ST_PointOnSurface(geom)
               FROM admin_units WHERE code = '02647'
               RETURNING id""", (ticket,)).fetchone()
    return ticket, ident


def _delete_incident(demo_url: str, ident: int) -> None:
    with psycopg.connect(demo_url) as conn:
        conn.execute("DELETE FROM incidents WHERE id = %s AND data_source = 'test'", (ident,))


@pytest.mark.slow
def test_wall_on_a_4k_screen_shows_new_incidents_without_reload(browser, server, demo_url, artifacts):
    # bypass_csp: Playwright's wait_for_function evaluates its predicate with eval(), which our CSP
    # forbids; the pages' own CSP compliance is checked in test_security_headers.py.
    context = browser.new_context(locale="vi-VN", viewport={"width": 3840, "height": 2160}, bypass_csp=True)
    page = context.new_page()
    requests: list[str] = []
    problems: list[str] = []
    navigations: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: problems.append(f"failed {r.url}: {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("framenavigated", lambda f: f == page.main_frame and navigations.append(f.url))
    ident = None
    try:
        page.goto(f"{server}/wall?rotate=4&poll={POLL_S}", wait_until="networkidle", timeout=90_000)
        page.wait_for_function("window.iocgisWall && iocgisWall.ready && iocgisWall.polls > 0", timeout=30_000)
        page.wait_for_function("document.querySelector('#kpi-open .kpi-value').textContent !== '—'", timeout=30_000)
        assert page.evaluate("document.documentElement.lang") == "vi"

        # Five KPI tiles, readable across the room: large numbers in Vietnamese format.
        summary = get_json(f"{server}/api/wall/summary")
        tiles = page.locator(".kpi")
        assert tiles.count() == 5
        open_text = page.locator("#kpi-open .kpi-value").inner_text()
        assert open_text == f"{summary['incidents']['open']:,}".replace(",", ".")
        for tile in tiles.all():
            box = tile.bounding_box()
            assert box and box["width"] > 600 and box["height"] > 150
        size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('.kpi-value')).fontSize)")
        assert size >= 100, f"KPI numbers are {size}px on a 4K wall"
        assert page.evaluate("document.querySelectorAll('path').length") >= 99    # communes drawn
        assert page.evaluate("document.documentElement.scrollHeight") <= 2160
        assert page.locator("#wall-time").inner_text().count(":") == 2
        assert "/" in page.locator("#wall-date").inner_text()     # dd/mm/yyyy
        assert page.locator("#wall-feed-list li").count() > 0

        # Themes rotate by themselves.
        first = page.evaluate("iocgisWall.theme")
        page.wait_for_function(f"iocgisWall.theme !== {json.dumps(first)}", timeout=15_000)
        page.wait_for_function("iocgisWall.theme.startsWith('indicator:')", timeout=15_000)
        page.wait_for_timeout(1200)
        page.screenshot(path=str(artifacts / "wall-4k.png"))

        # A new incident in the database shows up on the wall within the poll period, no reload.
        polls = page.evaluate("iocgisWall.polls")
        ticket, ident = _insert_incident(demo_url)
        started = time.monotonic()
        page.locator(f'#wall-feed-list li[data-ticket="{ticket}"]').wait_for(timeout=(POLL_S * 2 + 5) * 1000)
        elapsed = time.monotonic() - started
        assert elapsed <= POLL_S * 2 + 3, elapsed
        assert page.evaluate("iocgisWall.polls") > polls
        item = page.locator(f'#wall-feed-list li[data-ticket="{ticket}"]')
        assert "Ngập lụt" in item.inner_text() and "Lào Cai" in item.inner_text()
        assert page.locator("#wall-feed-list li").count() <= 14    # capped
        assert page.locator(".wall-pulse").count() >= 1
        page.wait_for_function(f"document.querySelector('#kpi-open .kpi-value').textContent === "
                               f"{json.dumps(f'{summary['incidents']['open'] + 1:,}'.replace(',', '.'))}",
                               timeout=15_000)
        page.screenshot(path=str(artifacts / "wall-4k-new-incident.png"))
        assert len(navigations) == 1, navigations   # never reloaded

        for url in requests:
            parts = urlsplit(url)
            assert parts.scheme in ("data", "blob") or parts.hostname == "127.0.0.1", f"left the machine: {url}"
        assert problems == [], problems
    finally:
        if ident is not None:
            _delete_incident(demo_url, ident)
        context.close()


@pytest.mark.slow
def test_wall_in_english(browser, server):
    context = browser.new_context(locale="en-GB", viewport={"width": 1920, "height": 1080}, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(f"{server}/wall?lang=en&poll=60", wait_until="networkidle")
        page.wait_for_function("window.iocgisWall && iocgisWall.polls > 0", timeout=30_000)
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.locator("#kpi-overdue .kpi-label").inner_text() == "Overdue"
        assert "Connected" in page.locator("#wall-conn").inner_text()
    finally:
        context.close()


@pytest.mark.slow
def test_wall_shows_an_alert_until_it_is_acknowledged(browser, server, demo_url, artifacts):
    """An alert fired in the database appears on the wall, with its communes outlined on the map,
    and leaves it once an operator acknowledges it — no reload either way."""
    rule = f"test_wall_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(demo_url, autocommit=True) as conn:
        conn.execute("INSERT INTO alert_rules (code, kind, name_vi, name_en, severity, params) VALUES"
                     " (%s, 'open_incidents', 'Thử cảnh báo', 'Test alert', 'critical', '{}')", (rule,))
        alert_id = conn.execute(
            "INSERT INTO alerts (rule_code, severity, reason_vi, reason_en, communes, fingerprint) VALUES"
            " (%s, 'critical', 'Mưa lớn trên vùng nguy cơ sạt lở tại Sa Pa',"
            " 'Heavy rain over landslide hazard in Sa Pa',"
            " ARRAY(SELECT code FROM communes WHERE name = 'Sa Pa'), %s) RETURNING id", (rule, rule)).fetchone()[0]
    context = browser.new_context(locale="vi-VN", viewport={"width": 3840, "height": 2160}, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(f"{server}/wall?rotate=30&poll={POLL_S}", wait_until="networkidle", timeout=90_000)
        item = page.locator(f'#wall-alert-list li[data-alert="{alert_id}"]')
        item.wait_for(timeout=(POLL_S * 2 + 10) * 1000)
        assert "sạt lở tại Sa Pa" in item.text_content() and "Khẩn cấp" in item.text_content()
        assert page.locator("#wall-alerts").is_visible()
        outlined = page.locator('path[stroke="#ef4444"]').count()
        assert outlined >= 1      # Sa Pa outlined on the map (other alerts may be active too)
        page.screenshot(path=str(artifacts / "wall-4k-alert.png"))
        request = urllib.request.Request(f"{server}/api/alerts/{alert_id}/acknowledge", method="POST", data=b"{}",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {ensure_token(demo_url, 'operator')}"})
        with urllib.request.urlopen(request) as response:
            assert response.status == 200
        item.wait_for(state="detached", timeout=(POLL_S * 2 + 10) * 1000)
        assert page.locator('path[stroke="#ef4444"]').count() == outlined - 1
    finally:
        context.close()
        with psycopg.connect(demo_url, autocommit=True) as conn:
            conn.execute("DELETE FROM alert_rules WHERE code = %s", (rule,))


def _start_server(demo_url: str, port: int, log_path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": demo_url, "IOCGIS_PORT": str(port)}
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child process, closed with it
    proc = subprocess.Popen([sys.executable, "-m", "gis_core.cli", "serve"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/wall/summary", timeout=5):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start")


@pytest.mark.slow
def test_wall_reconnects_after_a_server_restart_and_does_not_grow(browser, demo_url, tmp_path):
    """A wall runs for days: when its server goes away it says so and retries with backoff, comes
    back by itself when the server does, and a long run of polls and rotations keeps the DOM and
    the JS heap flat."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _start_server(demo_url, port, tmp_path / "server.log")
    page = browser.new_page(viewport={"width": 1920, "height": 1080}, bypass_csp=True)   # see above
    try:
        page.goto(f"http://127.0.0.1:{port}/wall?rotate=1&poll=1", wait_until="load", timeout=90_000)
        page.wait_for_function("window.iocgisWall && iocgisWall.ready && iocgisWall.polls > 2", timeout=30_000)

        def footprint() -> tuple[int, int]:
            page.evaluate("window.gc && window.gc()")
            return page.evaluate("[document.getElementsByTagName('*').length, performance.memory.usedJSHeapSize]")

        page.wait_for_function("iocgisWall.rotations > 8", timeout=60_000)
        nodes_before, heap_before = footprint()
        page.wait_for_function("iocgisWall.rotations > 30 && iocgisWall.polls > 25", timeout=90_000)
        nodes_after, heap_after = footprint()
        assert nodes_after <= nodes_before * 1.1 + 50, (nodes_before, nodes_after)
        assert heap_after <= heap_before * 1.5 + 2_000_000, (heap_before, heap_after)

        proc.terminate()
        proc.wait(10)
        page.wait_for_function("document.getElementById('wall-conn').classList.contains('down')", timeout=20_000)
        failures = page.evaluate("iocgisWall.failures")
        assert failures >= 1 and "Mất kết nối" in page.locator("#wall-conn").inner_text()

        proc = _start_server(demo_url, port, tmp_path / "server.log")
        polls = page.evaluate("iocgisWall.polls")
        # Backoff doubles from 2 s: after a short outage the next try is due within a few seconds.
        page.wait_for_function(f"document.getElementById('wall-conn').classList.contains('ok') && "
                               f"iocgisWall.polls > {polls}", timeout=40_000)
        assert page.evaluate("window.location.href").endswith("poll=1")  # never reloaded
    finally:
        page.close()
        proc.terminate()
        proc.wait(10)
