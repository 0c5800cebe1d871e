"""The incident workflow in gis_core: the state machine, ticket numbering next to the demo's codes,
routing and deadlines as data, overdue from the due time. Each test on a fresh migrated database
with a two-commune test province."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest

from gis_core.errors import NotFound
from gis_core.incidents import workflow
from gis_core.incidents.errors import IllegalTransition, ValidationFailed
from gis_core.incidents.ratelimit import TokenBucket
from gis_core.incidents.workflow import BoardFilter, NewIncident, check_transition, create_incident, transition

LOCAL = dt.timezone(dt.timedelta(hours=7))
SQUARE = "MULTIPOLYGON((({x0} 21.5, {x1} 21.5, {x1} 22.5, {x0} 22.5, {x0} 21.5)))"


def add_province(conn: psycopg.Connection) -> None:
    """Province 15 over 103.5-104.5 E, 21.5-22.5 N, split into communes 00001 (west) and 00002 (east)."""
    rows = [("15", None, "province", "Tỉnh", 103.5, 104.5), ("00001", "15", "commune", "Xã", 103.5, 104.0),
            ("00002", "15", "commune", "Phường", 104.0, 104.5)]
    for code, parent, level, kind, x0, x1 in rows:
        conn.execute(
            "INSERT INTO admin_units (code, parent_code, level, kind, name, full_name, name_unaccent, valid_from,"
            " source, geom) VALUES (%s, %s, %s, %s, %s, %s, %s, '2025-07-01', 'test', ST_GeomFromText(%s, 4326))",
            (code, parent, level, kind, f"Thử {code}", f"{kind} Thử {code}", f"thu {code}",
             SQUARE.format(x0=x0, x1=x1)))
    conn.commit()


@pytest.fixture
def province(conn):
    add_province(conn)
    return conn


def new(category: str = "traffic", commune: str = "00001", **kw) -> NewIncident:
    return NewIncident(category=category, source="citizen", description="Đèn tín hiệu hỏng ở ngã tư",
                       lon=103.7 if commune == "00001" else 104.2, lat=22.0, commune_code=commune,
                       data_source="test", actor="citizen", **kw)


def this_year() -> int:
    return dt.datetime.now(LOCAL).year


# -- the state machine, no database ---------------------------------------------------------------


def test_every_status_has_its_steps_and_only_those():
    assert set(workflow.TRANSITIONS) == set(workflow.STATUSES)
    path = ["new", "assigned", "in_progress", "resolved", "closed"]
    for a, b in zip(path, path[1:], strict=False):
        check_transition(a, b)
    for status in ("new", "assigned", "in_progress"):
        check_transition(status, "rejected")
    for bad in [("new", "resolved"), ("new", "closed"), ("assigned", "new"), ("closed", "in_progress"),
                ("rejected", "assigned"), ("resolved", "rejected"), ("closed", "rejected")]:
        with pytest.raises(IllegalTransition) as err:
            check_transition(*bad)
        assert err.value.status == 409
    with pytest.raises(ValidationFailed):
        check_transition("new", "done")


def test_board_where_clause_is_built_from_parameters_only():
    where, params = workflow.where_clause(BoardFilter(status="new", category="fire", commune_code="00001",
                                                      overdue=True, before_id=7))
    text = where.as_string(None)
    assert "%(status)s" in text and "%(commune_code)s" in text and "i.due_at < now()" in text
    assert params == {"status": "new", "category": "fire", "commune_code": "00001", "before_id": 7}
    assert "00001" not in text
    with pytest.raises(ValidationFailed):
        workflow.where_clause(BoardFilter(status="'; DROP TABLE incidents; --"))


def test_token_bucket_allows_the_burst_then_the_rate():
    now = [100.0]
    bucket = TokenBucket(rate=1.0, burst=3, clock=lambda: now[0])
    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("a") == pytest.approx(1.0)
    assert bucket.take("b") == 0.0            # per client
    now[0] += 1.0
    assert bucket.take("a") == 0.0
    assert bucket.take("a") > 0


def test_token_bucket_memory_is_bounded():
    bucket = TokenBucket(rate=1.0, burst=1, max_keys=100)
    for i in range(1000):
        bucket.take(f"10.0.{i // 250}.{i % 250}")
    assert len(bucket._buckets) <= 100


# -- creation: ticket, routing, due time ---------------------------------------------------------


def test_tickets_continue_after_the_highest_existing_number_and_never_collide(province):
    conn = province
    year = this_year()
    # What the demo does: numbers its own rows from 1 (here up to 41).
    conn.execute("INSERT INTO incidents (ticket_code, category, source, status, reported_at, commune_code,"
                 " description, data_source, geom) VALUES (%s, 'other', 'citizen', 'new', now(), '00001', 'x',"
                 " 'generated:demo', ST_SetSRID(ST_MakePoint(103.7, 22.0), 4326))", (f"PA-{year}-000041",))
    first = create_incident(conn, new())
    conn.commit()
    assert first["ticket_code"] == f"PA-{year}-000042"
    # Someone numbers behind the counter's back (a demo reloaded after real reports): the allocator
    # meets the existing code, re-syncs and goes on after it.
    conn.execute("INSERT INTO incidents (ticket_code, category, source, status, reported_at, commune_code,"
                 " description, data_source, geom) VALUES (%s, 'other', 'citizen', 'new', now(), '00001', 'x',"
                 " 'generated:demo', ST_SetSRID(ST_MakePoint(103.7, 22.0), 4326))", (f"PA-{year}-000043",))
    second = create_incident(conn, new())
    conn.commit()
    assert second["ticket_code"] == f"PA-{year}-000044"


def test_concurrent_creations_get_distinct_consecutive_tickets(province, db_url):
    codes: list[str] = []
    errors: list[BaseException] = []

    def worker():
        try:
            with psycopg.connect(db_url) as c:
                for _ in range(5):
                    codes.append(create_incident(c, new())["ticket_code"])
                    c.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    numbers = sorted(int(c.rsplit("-", 1)[1]) for c in codes)
    assert numbers == list(range(1, 41))


def test_routing_and_due_time_come_from_data(province):
    conn = province
    fire = create_incident(conn, new("fire"))
    assert fire["agency_code"] == "pccc"
    assert fire["due_at"] - fire["reported_at"] == dt.timedelta(hours=6)
    # A commune-specific rule beats the category-wide one; the SLA is data too.
    conn.execute("INSERT INTO routing_rules (category, commune_code, agency_code)"
                 " VALUES ('traffic', '00002', 'ubnd_xa')")
    conn.execute("UPDATE incident_categories SET sla_hours = 2 WHERE code = 'traffic'")
    west = create_incident(conn, new("traffic", "00001"))
    east = create_incident(conn, new("traffic", "00002"))
    assert west["agency_code"] == "cong_an_tinh" and east["agency_code"] == "ubnd_xa"
    assert east["due_at"] - east["reported_at"] == dt.timedelta(hours=2)
    assert create_incident(conn, new("other"))["agency_code"] == "ubnd_xa"    # the default rule
    conn.commit()


# -- transitions -------------------------------------------------------------------------------------


def test_through_every_state_with_every_step_recorded(province):
    conn = province
    code = create_incident(conn, new())["ticket_code"]
    conn.commit()
    transition(conn, code, "assigned", "trực ban Hà", comment="giao Công an", agency="cong_an_tinh")
    transition(conn, code, "in_progress", "cong_an:Sơn")
    with pytest.raises(ValidationFailed) as err:   # resolving needs an answer for the citizen
        transition(conn, code, "resolved", "cong_an:Sơn")
    assert "answer" in err.value.fields
    done = transition(conn, code, "resolved", "cong_an:Sơn", answer="Đã sửa đèn tín hiệu.")
    assert done["resolved_at"] is not None and done["answer"] == "Đã sửa đèn tín hiệu."
    transition(conn, code, "closed", "trực ban Hà")
    with pytest.raises(IllegalTransition):
        transition(conn, code, "assigned", "trực ban Hà")
    history = workflow.detail(conn, code)["history"]
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        (None, "new"), ("new", "assigned"), ("assigned", "in_progress"), ("in_progress", "resolved"),
        ("resolved", "closed")]
    assert [h["actor"] for h in history] == ["citizen", "trực ban Hà", "cong_an:Sơn", "cong_an:Sơn", "trực ban Hà"]
    assert history[1]["comment"] == "giao Công an"
    assert all(a["at"] <= b["at"] for a, b in zip(history, history[1:], strict=False))
    row = conn.execute("SELECT status, resolved_at IS NOT NULL FROM incidents WHERE ticket_code = %s",
                       (code,)).fetchone()
    assert row == ("closed", True)


def test_rejection_needs_a_reason_and_is_final(province):
    conn = province
    code = create_incident(conn, new())["ticket_code"]
    conn.commit()
    with pytest.raises(ValidationFailed):
        transition(conn, code, "rejected", "trực ban")
    transition(conn, code, "rejected", "trực ban", reason="Trùng phản ánh PA-2026-000001.")
    assert workflow.detail(conn, code)["reject_reason"] == "Trùng phản ánh PA-2026-000001."
    for target in ("new", "assigned", "in_progress", "resolved", "closed"):
        with pytest.raises(IllegalTransition):
            transition(conn, code, target, "trực ban")
    # a refused step changes nothing
    assert conn.execute("SELECT count(*) FROM incident_transitions t JOIN incidents i ON i.id = t.incident_id"
                        " WHERE i.ticket_code = %s", (code,)).fetchone()[0] == 2


def test_unknown_ticket_and_missing_actor(province):
    with pytest.raises(NotFound):
        transition(province, "PA-2026-999999", "assigned", "x")
    code = create_incident(province, new())["ticket_code"]
    province.commit()
    with pytest.raises(ValidationFailed):
        transition(province, code, "assigned", "  ")
    with pytest.raises(ValidationFailed):
        transition(province, code, "assigned", "x", agency="no_such_agency")


def test_overdue_is_computed_from_the_due_time(province):
    conn = province
    late = create_incident(conn, new("fire"))["ticket_code"]
    fresh = create_incident(conn, new("fire"))["ticket_code"]
    # The late one was reported seven hours ago: its six-hour deadline passed an hour ago.
    conn.execute("UPDATE incidents SET reported_at = now() - interval '7 hours', due_at = now() - interval '1 hour'"
                 " WHERE ticket_code = %s", (late,))
    conn.commit()
    overdue = [r["ticket_code"] for r in workflow.overdue(conn)]
    assert overdue == [late]
    assert workflow.detail(conn, late)["overdue"] and not workflow.detail(conn, fresh)["overdue"]
    assert workflow.counts(conn)["overdue"] == 1
    board = workflow.board(conn, BoardFilter(overdue=True))
    assert [r["ticket_code"] for r in board] == [late]
    # Done is done: a resolved incident is no longer overdue, even past its deadline.
    transition(conn, late, "assigned", "op")
    transition(conn, late, "in_progress", "op")
    transition(conn, late, "resolved", "op", answer="Đã dập tắt.")
    assert workflow.overdue(conn) == []


def test_board_filters_and_keyset_pages(province):
    conn = province
    codes = [create_incident(conn, new("fire" if i % 2 else "traffic", "00001" if i < 4 else "00002"))["ticket_code"]
             for i in range(6)]
    conn.commit()
    assert {r["ticket_code"] for r in workflow.board(conn, BoardFilter(category="fire"))} == set(codes[1::2])
    assert {r["ticket_code"] for r in workflow.board(conn, BoardFilter(commune_code="00002"))} == set(codes[4:])
    page1 = workflow.board(conn, BoardFilter(limit=4))
    page2 = workflow.board(conn, BoardFilter(limit=4, before_id=page1[-1]["id"]))
    assert [r["ticket_code"] for r in page1 + page2] == codes[::-1]
    transition(conn, codes[0], "assigned", "op")
    assert [r["ticket_code"] for r in workflow.board(conn, BoardFilter(status="assigned"))] == [codes[0]]


def test_demo_reload_keeps_real_reports_and_their_history(conn, tmp_path):
    """Workflow rows of generated incidents go with them; a citizen's report, its history and its
    ticket survive a forced reload of the demo, and numbering goes on without a collision."""
    from gis_core.demo import load_demo
    from gis_core.incidents.reports import ReportInput, submit_report
    from gis_core.settings import Settings

    settings = Settings(database_url="postgresql://unused", var_dir=tmp_path)
    load_demo(conn, settings)
    demo_code = conn.execute("SELECT ticket_code FROM incidents ORDER BY id LIMIT 1").fetchone()[0]
    status = conn.execute("SELECT status FROM incidents WHERE ticket_code = %s", (demo_code,)).fetchone()[0]
    if status in workflow.OPEN_STATUSES:       # a demo row with a recorded step of its own
        transition(conn, demo_code, "rejected", "op", reason="thử")
    mine = submit_report(conn, ReportInput("traffic", "Xe tải đỗ sai quy định gây ùn tắc", 103.97, 22.498))
    transition(conn, mine["ticket_code"], "assigned", "op")
    load_demo(conn, settings, force=True)
    assert conn.execute("SELECT count(*) FROM incident_transitions t JOIN incidents i ON i.id = t.incident_id"
                        " WHERE i.ticket_code = %s", (mine["ticket_code"],)).fetchone()[0] == 2
    again = submit_report(conn, ReportInput("traffic", "Đèn tín hiệu giao thông không hoạt động", 103.97, 22.498))
    assert again["ticket_code"] > mine["ticket_code"]
