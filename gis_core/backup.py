"""Backups of the whole database with PostgreSQL's own tools: pg_dump's custom format (compressed,
restorable table by table) and pg_restore into an empty database in one transaction, so a failed
restore leaves the target as empty as it was.

The password never appears on a command line (other users of the machine can read those): the
tools get a connection string without it and the password in PGPASSWORD.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .auth.grants import STAFF_DB_ROLES
from .errors import IocgisError
from .rows import one

# The group roles of 0001 and 0027: restored GRANTs name them, and a new cluster may not have them
# yet. A dump holds no role memberships (they are the cluster's), so those are made here too.
ROLES = ("iocgis_read", "iocgis_ingest", "iocgis_owner", *STAFF_DB_ROLES)
MEMBERSHIPS = tuple(("iocgis_read", member) for member in ("iocgis_ingest", *STAFF_DB_ROLES))

USER_OBJECTS = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'topology', 'tiger', 'tiger_data')
  AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')   -- PostGIS's own
"""


class BackupError(IocgisError):
    status = 500
    code = "BackupError"


def _tool(name: str) -> str:
    """The tool of the PostgreSQL that has PostGIS (the managed cluster's), else the one on PATH."""
    from .cluster import find_bindir

    try:
        candidate = find_bindir() / name
        if candidate.exists():
            return str(candidate)
    except Exception:  # noqa: BLE001 - no managed PostgreSQL here: fall back to PATH
        pass
    found = shutil.which(name)
    if not found:
        raise BackupError(f"Không tìm thấy {name}: cài gói postgresql-client.",
                          f"{name} not found: install the postgresql-client package.")
    return found


def _split(url: str) -> tuple[str, dict[str, str]]:
    """A connection string without the password, and the environment that carries it."""
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = {**os.environ}
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def _run(cmd: list[str], env: dict[str, str], what_vi: str, what_en: str) -> None:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # pg_dump/pg_restore messages name objects, not data: safe and useful to show.
        detail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise BackupError(f"{what_vi} thất bại:\n{detail}", f"{what_en} failed:\n{detail}")


def backup(url: str, path: Path) -> int:
    """Write the database to `path` (pg_dump -Fc); return the file's size in bytes."""
    path = Path(path)
    if path.is_dir():
        raise BackupError(f"{path} là một thư mục.", f"{path} is a directory.")
    if not path.parent.is_dir():
        raise BackupError(f"Không có thư mục {path.parent}.", f"No directory {path.parent}.")
    conninfo, env = _split(url)
    partial = path.with_name(path.name + ".partial")
    try:
        _run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={partial}", f"--dbname={conninfo}"],
             env, "Sao lưu", "Backup")
        partial.replace(path)   # a crash mid-dump never leaves a truncated file under the real name
    finally:
        partial.unlink(missing_ok=True)
    return path.stat().st_size


def is_empty(url: str) -> bool:
    from .db import connect

    with connect(url) as conn:
        return one(conn.execute(USER_OBJECTS))[0] == 0


def restore(url: str, path: Path) -> None:
    """Restore a backup into the (empty) database at `url`, all of it or nothing."""
    from .db import connect

    path = Path(path)
    if not path.is_file():
        raise BackupError(f"Không có tệp sao lưu {path}.", f"No backup file {path}.")
    with path.open("rb") as f:
        if f.read(5) != b"PGDMP":
            raise BackupError(f"{path} không phải tệp sao lưu pg_dump (định dạng custom).",
                              f"{path} is not a pg_dump custom-format backup.")
    if not is_empty(url):
        raise BackupError(
            "Cơ sở dữ liệu đích không trống: chỉ khôi phục vào một CSDL trống (tạo CSDL mới, hoặc đặt"
            " DATABASE_URL tới một CSDL trống).",
            "The target database is not empty: restore only into an empty database (create a new one,"
            " or point DATABASE_URL at an empty one).")
    with connect(url, autocommit=True) as conn:
        for role in ROLES:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                try:
                    conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
                except psycopg.Error as exc:
                    raise BackupError(f"Thiếu vai trò {role} và không tạo được nó.",
                                      f"Role {role} is missing and cannot be created.") from exc
        for group, member in MEMBERSHIPS:
            if not one(conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (member, group)))[0]:
                try:
                    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(member)))
                except psycopg.Error as exc:
                    raise BackupError(f"Không cho được {member} làm thành viên của {group}.",
                                      f"Cannot make {member} a member of {group}.") from exc
    conninfo, env = _split(url)
    # --clean --if-exists: the dump re-creates the public schema, which even an empty database has.
    _run([_tool("pg_restore"), "--no-owner", "--single-transaction", "--exit-on-error", "--clean", "--if-exists",
          f"--dbname={conninfo}", str(path)], env, "Khôi phục", "Restore")
