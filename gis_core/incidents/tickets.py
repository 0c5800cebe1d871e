"""Ticket codes: PA-<local year>-<number>, numbered per year, never reused.

The demo (and any import) numbers its own rows, so a counter row is seeded from the highest number
already in `incidents` for that year, and re-synced from there if a code ever turns out to exist.
The counter row is locked until the caller's transaction ends: numbers are allocated in commit order
and a rolled-back report leaves a gap, as public ticket numbers may.
"""

from __future__ import annotations

import psycopg

from ..rows import one

PREFIX = "PA"
LOCAL_TZ = "Asia/Ho_Chi_Minh"   # years are local: a report at 23:30 on 31 Dec (UTC+7) is of that year

NEXT = """
UPDATE ticket_counters SET last = last + 1
WHERE prefix = %(prefix)s AND year = extract(year FROM now() AT TIME ZONE %(tz)s)::int
RETURNING year, last
"""

# Seed (or raise) this year's counter to the highest number present. Rare (first report of a year, or
# a collision), so a LIKE that may scan is fine; a range on the text would depend on the collation.
SYNC = """
INSERT INTO ticket_counters AS t (prefix, year, last)
SELECT %(prefix)s, y.year,
       coalesce((SELECT max(substring(i.ticket_code FROM 9)::bigint) FROM incidents i
                 WHERE i.ticket_code LIKE %(prefix)s || '-' || y.year || '-%%'
                   AND i.ticket_code ~ '^[A-Z]+-[0-9]{4}-[0-9]+$'), 0)
FROM (SELECT extract(year FROM now() AT TIME ZONE %(tz)s)::int AS year) y
ON CONFLICT (prefix, year) DO UPDATE SET last = greatest(t.last, EXCLUDED.last)
"""


def format_ticket(prefix: str, year: int, number: int) -> str:
    return f"{prefix}-{year}-{number:06d}"


def allocate_ticket(conn: psycopg.Connection, prefix: str = PREFIX) -> str:
    params = {"prefix": prefix, "tz": LOCAL_TZ}
    with conn.cursor() as cur:
        cur.execute(NEXT, params)
        row = cur.fetchone()
        if row is None:        # the first report of the year
            cur.execute(SYNC, params)
            cur.execute(NEXT, params)
            row = one(cur)
    year, number = row
    return format_ticket(prefix, year, number)


def resync_counter(conn: psycopg.Connection, prefix: str = PREFIX) -> None:
    conn.execute(SYNC, {"prefix": prefix, "tz": LOCAL_TZ})
