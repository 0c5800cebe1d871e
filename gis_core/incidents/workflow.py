"""The incident workflow: the state machine, and the only code that creates an incident or changes
its status.

    new -> assigned -> in_progress -> resolved -> closed
      \\________\\___________\\_____-> rejected (with a public reason)
    resolved -> in_progress (reopened: the fix did not hold)

Every change is recorded in `incident_transitions` (who, when, from, to, comment) in the same
transaction as the change itself. An incident is routed at creation to an agency (routing rules
by category and commune, as data) and gets its due time from its category's SLA (as data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ..errors import NotFound
from ..rows import one
from .errors import IllegalTransition, ValidationFailed
from .tickets import allocate_ticket, resync_counter

STATUSES = ("new", "assigned", "in_progress", "resolved", "closed", "rejected")
OPEN_STATUSES = ("new", "assigned", "in_progress")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("assigned", "rejected"),
    "assigned": ("in_progress", "rejected"),
    "in_progress": ("resolved", "rejected"),
    "resolved": ("closed", "in_progress"),
    "closed": (),
    "rejected": (),
}
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "new": ("Mới tiếp nhận", "Received"),
    "assigned": ("Đã giao xử lý", "Assigned"),
    "in_progress": ("Đang xử lý", "In progress"),
    "resolved": ("Đã xử lý xong", "Resolved"),
    "closed": ("Đã đóng", "Closed"),
    "rejected": ("Không tiếp nhận", "Rejected"),
}
SOURCES = ("citizen", "camera", "sensor")
MAX_COMMENT = 4000
MAX_REASON = 2000


def allowed_next(status: str) -> tuple[str, ...]:
    return TRANSITIONS.get(status, ())


def check_transition(current: str, target: str) -> None:
    """Raise IllegalTransition (409) unless `current -> target` is a step of the workflow."""
    if target not in STATUSES:
        raise ValidationFailed({"to": (f"Trạng thái không tồn tại: {target!r}.", f"Unknown status: {target!r}.")})
    if target not in TRANSITIONS[current]:
        options = ", ".join(TRANSITIONS[current]) or "-"
        raise IllegalTransition(
            f"Không thể chuyển từ '{STATUS_LABELS[current][0]}' sang '{STATUS_LABELS[target][0]}'"
            f" (được phép: {options}).",
            f"Cannot move from '{current}' to '{target}' (allowed: {options}).")


# -- creation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewIncident:
    category: str
    source: str
    description: str
    lon: float
    lat: float
    commune_code: str
    data_source: str
    actor: str
    camera_id: int | None = None
    reporter_name: str | None = None
    reporter_contact: str | None = None


# One statement: the incident with its due time from the category's SLA, its workflow row with the
# routed agency, and the creation recorded as the first transition.
INSERT_INCIDENT = """
WITH i AS (
  INSERT INTO incidents (ticket_code, category, source, status, reported_at, due_at, commune_code, camera_id,
                         description, reporter_name, reporter_contact, data_source, geom)
  SELECT %(ticket)s, c.code, %(source)s, 'new', now(), now() + make_interval(hours => c.sla_hours),
         %(commune_code)s, %(camera_id)s, %(description)s, %(reporter_name)s, %(reporter_contact)s,
         %(data_source)s, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)
  FROM incident_categories c WHERE c.code = %(category)s
  RETURNING id, ticket_code, category, commune_code, status, reported_at, due_at
), w AS (
  INSERT INTO incident_workflow (incident_id, agency_code)
  SELECT id, incident_route(category, commune_code) FROM i
  RETURNING incident_id, agency_code
), t AS (
  INSERT INTO incident_transitions (incident_id, from_status, to_status, actor, at, comment)
  SELECT id, NULL, 'new', %(actor)s, reported_at, %(comment)s FROM i
)
SELECT i.id, i.ticket_code, i.category, i.commune_code, i.status, i.reported_at, i.due_at, w.agency_code
FROM i JOIN w ON w.incident_id = i.id
"""


def create_incident(conn: psycopg.Connection, new: NewIncident, comment: str | None = None) -> dict[str, Any]:
    """Insert a new incident (status 'new') inside the caller's transaction; return its row."""
    if new.source not in SOURCES:
        raise ValueError(f"unknown source {new.source!r}")
    params = {**new.__dict__, "comment": comment}
    for attempt in range(3):
        ticket = allocate_ticket(conn)
        try:
            # A savepoint, so that a ticket collision leaves the caller's transaction usable.
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                cur.execute(INSERT_INCIDENT, {**params, "ticket": ticket})
                row = cur.fetchone()
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name != "incidents_ticket_code_key" or attempt == 2:
                raise
            resync_counter(conn)   # someone numbered incidents behind the counter's back
            continue
        if row is None:
            raise ValidationFailed({"category": (f"Lĩnh vực không tồn tại: {new.category!r}.",
                                                 f"Unknown category: {new.category!r}.")})
        return row
    raise AssertionError("unreachable")


# -- transitions ---------------------------------------------------------------------------------


LOCK_INCIDENT = """
SELECT i.id, i.status, i.category, i.commune_code, w.agency_code
FROM incidents i LEFT JOIN incident_workflow w ON w.incident_id = i.id
WHERE i.ticket_code = %s
FOR UPDATE OF i
"""

UPDATE_STATUS = """
UPDATE incidents SET status = %(to)s,
  resolved_at = CASE WHEN %(to)s = 'resolved' THEN greatest(now(), reported_at)
                     WHEN %(to)s = 'in_progress' THEN NULL
                     ELSE resolved_at END
WHERE id = %(id)s
RETURNING status, resolved_at
"""

UPSERT_WORKFLOW = """
INSERT INTO incident_workflow AS w (incident_id, agency_code, answer, reject_reason, updated_at)
VALUES (%(id)s, coalesce(%(agency)s, incident_route(%(category)s, %(commune_code)s)), %(answer)s, %(reason)s, now())
ON CONFLICT (incident_id) DO UPDATE SET
  agency_code = coalesce(%(agency)s, w.agency_code, EXCLUDED.agency_code),
  answer = coalesce(%(answer)s, w.answer),
  reject_reason = coalesce(%(reason)s, w.reject_reason),
  updated_at = now()
RETURNING agency_code, answer, reject_reason
"""

INSERT_TRANSITION = """
INSERT INTO incident_transitions (incident_id, from_status, to_status, actor, comment)
VALUES (%(id)s, %(from)s, %(to)s, %(actor)s, %(comment)s)
RETURNING at
"""


def _clean(value: Any, limit: int, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed({field: ("Phải là văn bản.", "Must be text.")})
    value = value.strip()
    if len(value) > limit:
        raise ValidationFailed({field: (f"Tối đa {limit} ký tự.", f"At most {limit} characters.")})
    return value or None


def transition(conn: psycopg.Connection, ticket_code: str, to: str, actor: str, comment: str | None = None,
               answer: str | None = None, reason: str | None = None, agency: str | None = None) -> dict[str, Any]:
    """Move one incident to `to`, recording who, when and why. Raises NotFound, ValidationFailed,
    IllegalTransition (409). Runs in its own transaction (a savepoint if the caller has one)."""
    actor_clean = _clean(actor, 200, "actor")
    if not actor_clean:
        raise ValidationFailed({"actor": ("Cần ghi người thực hiện.", "Who makes the change is required.")})
    comment = _clean(comment, MAX_COMMENT, "comment")
    answer = _clean(answer, MAX_COMMENT, "answer")
    reason = _clean(reason, MAX_REASON, "reason")
    agency = _clean(agency, 64, "agency")
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(LOCK_INCIDENT, (ticket_code,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"Không có phiếu {ticket_code}.", f"No ticket {ticket_code}.")
        check_transition(row["status"], to)
        if to == "rejected" and not reason:
            raise ValidationFailed({"reason": ("Từ chối phải nêu lý do.", "A rejection needs a reason.")})
        if to == "resolved" and not answer:
            raise ValidationFailed({"answer": ("Cần trả lời người dân khi xử lý xong.",
                                               "Resolving needs an answer for the citizen.")})
        if agency is not None:
            cur.execute("SELECT 1 FROM agencies WHERE code = %s AND active", (agency,))
            if cur.fetchone() is None:
                raise ValidationFailed({"agency": (f"Không có cơ quan {agency!r}.", f"No agency {agency!r}.")})
        cur.execute(UPDATE_STATUS, {"to": to, "id": row["id"]})
        updated = one(cur)
        cur.execute(UPSERT_WORKFLOW, {"id": row["id"], "agency": agency, "category": row["category"],
                                      "commune_code": row["commune_code"], "answer": answer,
                                      "reason": reason if to == "rejected" else None})
        workflow = one(cur)
        cur.execute(INSERT_TRANSITION, {"id": row["id"], "from": row["status"], "to": to, "actor": actor_clean,
                                        "comment": comment})
        at = one(cur)["at"]
    return {"ticket_code": ticket_code, "from": row["status"], "status": updated["status"], "at": at,
            "resolved_at": updated["resolved_at"], **workflow, "allowed_next": list(allowed_next(to))}


# -- the operators' list -------------------------------------------------------------------------

OVERDUE = sql.SQL("(i.status IN ('new', 'assigned', 'in_progress') AND i.due_at < now())")


@dataclass(frozen=True)
class BoardFilter:
    status: str | None = None
    category: str | None = None
    commune_code: str | None = None
    overdue: bool = False
    before_id: int | None = None     # keyset paging: rows with a smaller id than this
    limit: int = 100


def where_clause(f: BoardFilter) -> tuple[sql.Composable, dict[str, Any]]:
    """The WHERE clause of the board's query and its parameters (pure: tested without a database)."""
    parts: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {}
    if f.status:
        if f.status not in STATUSES:
            raise ValidationFailed({"status": (f"Trạng thái không tồn tại: {f.status!r}.",
                                               f"Unknown status: {f.status!r}.")})
        parts.append(sql.SQL("i.status = %(status)s"))
        params["status"] = f.status
    if f.category:
        parts.append(sql.SQL("i.category = %(category)s"))
        params["category"] = f.category
    if f.commune_code:
        parts.append(sql.SQL("i.commune_code = %(commune_code)s"))
        params["commune_code"] = f.commune_code
    if f.overdue:
        parts.append(OVERDUE)
    if f.before_id is not None:
        parts.append(sql.SQL("i.id < %(before_id)s"))
        params["before_id"] = f.before_id
    return sql.SQL(" AND ").join(parts), params


BOARD = """
SELECT i.id, i.ticket_code, i.category, cat.name_vi AS category_vi, cat.name_en AS category_en, i.source,
       i.status, i.reported_at, i.due_at, i.resolved_at, i.commune_code, u.name AS commune_name, i.description,
       r.agency_code, a.name_vi AS agency_vi, a.name_en AS agency_en, {overdue} AS overdue
FROM incidents i
LEFT JOIN incident_workflow w ON w.incident_id = i.id
CROSS JOIN LATERAL (SELECT coalesce(w.agency_code, incident_route(i.category, i.commune_code)) AS agency_code) r
LEFT JOIN agencies a ON a.code = r.agency_code
LEFT JOIN incident_categories cat ON cat.code = i.category
LEFT JOIN admin_units u ON u.code = i.commune_code
WHERE {where}
ORDER BY {order}
LIMIT %(limit)s
"""


def board(conn: psycopg.Connection, f: BoardFilter) -> list[dict[str, Any]]:
    """One page of incidents, newest first (overdue ones: most overdue first)."""
    where, params = where_clause(f)
    order = sql.SQL("i.due_at, i.id" if f.overdue and f.before_id is None else "i.id DESC")
    query = sql.SQL(BOARD).format(overdue=OVERDUE, where=where, order=order)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, {**params, "limit": max(1, min(f.limit, 500))})
        return cur.fetchall()


def overdue(conn: psycopg.Connection, limit: int = 100) -> list[dict[str, Any]]:
    return board(conn, BoardFilter(overdue=True, limit=limit))


def counts(conn: psycopg.Connection) -> dict[str, int]:
    """Open incidents by status and how many are overdue (served by the status index)."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT i.status, count(*), count(*) FILTER (WHERE {}) FROM incidents i"
                            " WHERE i.status IN ('new', 'assigned', 'in_progress') GROUP BY 1").format(OVERDUE))
        rows = cur.fetchall()
    out = {status: 0 for status in OPEN_STATUSES}
    out.update({status: n for status, n, _ in rows})
    out["overdue"] = sum(late for _, _, late in rows)
    return out


DETAIL = """
SELECT i.id, i.ticket_code, i.category, cat.name_vi AS category_vi, cat.name_en AS category_en, i.source,
       i.status, i.reported_at, i.due_at, i.resolved_at, i.commune_code, u.name AS commune_name,
       i.description, i.reporter_name, i.reporter_contact, i.camera_id, i.data_source,
       ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,
       r.agency_code, a.name_vi AS agency_vi, a.name_en AS agency_en, w.answer, w.reject_reason,
       {overdue} AS overdue, (p.incident_id IS NOT NULL) AS has_photo
FROM incidents i
LEFT JOIN incident_workflow w ON w.incident_id = i.id
CROSS JOIN LATERAL (SELECT coalesce(w.agency_code, incident_route(i.category, i.commune_code)) AS agency_code) r
LEFT JOIN agencies a ON a.code = r.agency_code
LEFT JOIN incident_categories cat ON cat.code = i.category
LEFT JOIN admin_units u ON u.code = i.commune_code
LEFT JOIN incident_photos p ON p.incident_id = i.id
WHERE i.ticket_code = %s
"""

HISTORY = """
SELECT from_status, to_status, actor, at, comment FROM incident_transitions
WHERE incident_id = %s ORDER BY at, id
"""


def detail(conn: psycopg.Connection, ticket_code: str) -> dict[str, Any]:
    """Everything about one incident, for operators (reporter details included)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL(DETAIL).format(overdue=OVERDUE), (ticket_code,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"Không có phiếu {ticket_code}.", f"No ticket {ticket_code}.")
        cur.execute(HISTORY, (row["id"],))
        row["history"] = cur.fetchall()
    row["allowed_next"] = list(allowed_next(row["status"]))
    return row


def photo(conn: psycopg.Connection, ticket_code: str) -> tuple[str, bytes]:
    row = conn.execute("SELECT p.media_type, p.bytes FROM incident_photos p JOIN incidents i ON i.id = p.incident_id"
                       " WHERE i.ticket_code = %s", (ticket_code,)).fetchone()
    if row is None:
        raise NotFound("Phiếu này không có ảnh.", "This ticket has no photo.")
    return row[0], bytes(row[1])


def agencies(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT code, name_vi, name_en FROM agencies WHERE active ORDER BY name_vi")
        return cur.fetchall()


def categories(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT code, name_vi, name_en, sla_hours, citizen FROM incident_categories ORDER BY sort_order")
        return cur.fetchall()


def communes(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT code, name FROM admin_units WHERE level = 'commune' AND valid_to IS NULL ORDER BY name")
        return cur.fetchall()
