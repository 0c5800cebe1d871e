"""What a statement gives back, typed: psycopg's fetchone() says a row may be missing, which is
true of a lookup but not of an aggregate or an INSERT ... RETURNING."""

from __future__ import annotations

import psycopg


def one[Row](cursor: psycopg.Cursor[Row]) -> Row:
    """The row a statement always returns; none is a bug, said as such rather than as a TypeError."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("a statement that always returns a row returned none")
    return row
