"""Numbered SQL migrations from postgis/migrations, each applied once in its own transaction."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .errors import ConfigError
from .rows import one

NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK_KEY = 7_240_615  # advisory lock: two migrators never interleave

CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  checksum   text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = NAME.match(path.name)
        if not match:
            raise ConfigError(f"Tên migration không hợp lệ: {path.name}",
                              f"Bad migration file name: {path.name} (want NNNN_name.sql)")
        found.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ConfigError("Trùng số hiệu migration.", "Two migrations share a version number.")
    return found


def applied(conn: psycopg.Connection) -> dict[int, str]:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if not one(cur)[0]:
            return {}
        cur.execute("SELECT version, checksum FROM schema_migrations")
        return dict(cur.fetchall())


def migrate(conn: psycopg.Connection, directory: Path, layers_dir: Path | None = None) -> list[Migration]:
    """Apply pending migrations; refuse if an applied one has been edited since. Then, every time,
    grant the app roles their rights on the layer tables from the registry (auth/grants.py): a
    migration may have added a column, a layer file may have changed who sees a field."""
    from .auth import grants
    from .registry import Registry
    from .settings import Settings

    registry = Registry.load(layers_dir or Settings().layers_dir)
    migrations = discover(directory)
    done: list[Migration] = []
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        conn.execute(CREATE_VERSION_TABLE)
        have = applied(conn)
        for m in migrations:
            if m.version in have:
                if have[m.version] != m.checksum:
                    raise ConfigError(
                        f"Migration {m.path.name} đã áp dụng nhưng bị sửa sau đó; hãy thêm migration mới.",
                        f"Migration {m.path.name} was applied and then edited; add a new one instead.",
                    )
                continue
            with conn.transaction():
                conn.execute(m.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (m.version, m.name, m.checksum),
                )
            done.append(m)
        grants.apply(conn, registry)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return done
