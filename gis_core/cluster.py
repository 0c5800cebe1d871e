"""The managed PostGIS cluster: Debian's PostgreSQL 15 + PostGIS 3 running under var/.

PostgreSQL refuses to run as root, so when we are root every server-side command runs as the
unprivileged `postgres` system user (created by Debian's postgresql package), which owns the data
directory. The superuser password lives in var/pg/password (mode 600) and never in the repo.
TCP clients need that password; the Unix socket sits inside the data directory (mode 700), so
only the server's own user reaches it, and it is trusted.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .errors import ClusterError

PG_VERSIONS = ("15", "16", "17")
SUPERUSER = "iocgis"
DBNAME = "iocgis"
RUN_AS = "postgres"


def find_bindir() -> Path:
    """The bin directory of a PostgreSQL that has PostGIS installed beside it."""
    for version in PG_VERSIONS:
        bindir = Path(f"/usr/lib/postgresql/{version}/bin")
        control = Path(f"/usr/share/postgresql/{version}/extension/postgis.control")
        if (bindir / "initdb").exists() and control.exists():
            return bindir
    raise ClusterError(
        "Không tìm thấy PostgreSQL kèm PostGIS. Hãy cài: apt-get install postgresql-15-postgis-3",
        "No PostgreSQL with PostGIS found. Install it: apt-get install postgresql-15-postgis-3",
    )


@dataclass(frozen=True)
class Cluster:
    root: Path          # var/pg
    port: int
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    @property
    def url(self) -> str:
        password = quote(self.password_file.read_text().strip(), safe="")
        return f"postgresql://{SUPERUSER}:{password}@{self.host}:{self.port}/{DBNAME}"

    # -- helpers -------------------------------------------------------------------------------

    def _user(self) -> str | None:
        """The user server commands run as: `postgres` when we are root, else ourselves."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            raise ClusterError(
                f"Đang chạy với quyền root nhưng không có người dùng '{RUN_AS}' để chạy PostgreSQL.",
                f"Running as root but there is no '{RUN_AS}' user to run PostgreSQL as "
                "(apt-get install postgresql-15 creates it).",
            ) from None
        return RUN_AS

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        bindir = find_bindir()
        cmd = [str(bindir / args[0]), *args[1:]]
        result = subprocess.run(cmd, user=self._user(), capture_output=True, text=True,
                                cwd="/", check=False)
        if check and result.returncode != 0:
            raise ClusterError(
                f"Lệnh {args[0]} thất bại: {result.stderr.strip() or result.stdout.strip()}",
                f"{args[0]} failed: {result.stderr.strip() or result.stdout.strip()}",
            )
        return result

    def _chown(self, path: Path) -> None:
        user = self._user()
        if user:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> bool:
        """Create the cluster if it does not exist. Returns True when it was created."""
        if self.initialised:
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        # The server user must be able to walk down to its data directory.
        for parent in [self.root, *self.root.parents]:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                if parent.stat().st_uid == os.geteuid():
                    parent.chmod(mode | 0o011)
        self._chown(self.root)
        password = secrets.token_urlsafe(24)
        old_umask = os.umask(0o077)
        try:
            self.password_file.write_text(password + "\n")
        finally:
            os.umask(old_umask)
        with tempfile.NamedTemporaryFile("w", dir=self.root, delete=False) as pwfile:
            pwfile.write(password + "\n")
        pw_path = Path(pwfile.name)
        self._chown(pw_path)
        try:
            self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "-E", "UTF8",
                      "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256",
                      f"--pwfile={pw_path}")
        finally:
            pw_path.unlink(missing_ok=True)
        return True

    def running(self) -> bool:
        if not self.initialised:
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def start(self) -> None:
        if self.running():
            return
        log = self.log_file
        if not log.exists():
            log.touch()
            self._chown(log)
        options = (f"-p {self.port} -c listen_addresses={self.host} "
                   f"-c unix_socket_directories={self.data_dir} "
                   "-c shared_buffers=256MB -c max_connections=200")
        if self._throwaway:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        result = self._run("pg_ctl", "start", "-D", str(self.data_dir), "-l", str(log), "-w",
                           "-t", "60", "-o", options, check=False)
        if result.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
            raise ClusterError(
                f"Không khởi động được PostgreSQL trên cổng {self.port}:\n{tail}",
                f"PostgreSQL did not start on port {self.port}:\n{tail}",
            )
        self._ensure_database()

    def _ensure_database(self) -> None:
        result = self._run("createdb", "-h", str(self.data_dir), "-p", str(self.port),
                           "-U", SUPERUSER, DBNAME, check=False)
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise ClusterError(f"Không tạo được CSDL {DBNAME}: {result.stderr.strip()}",
                               f"Could not create database {DBNAME}: {result.stderr.strip()}")

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def up(self) -> bool:
        """Initialise when needed and start. Returns True when the cluster was new."""
        created = self.init()
        self.start()
        return created

    @property
    def _throwaway(self) -> bool:
        # Test clusters live in temp dirs: durability is worth nothing there, speed is.
        return (self.root / THROWAWAY).exists()


THROWAWAY = "THROWAWAY"  # a marker file: this cluster is for tests or benchmarks


def throwaway_cluster(root: Path, port: int) -> Cluster:
    """A started cluster under root/pg for tests and benchmarks, with durability traded for speed."""
    cluster = Cluster(root=root / "pg", port=port)
    cluster.root.mkdir(parents=True)
    (cluster.root / THROWAWAY).touch()
    cluster.up()
    return cluster


def managed_cluster(var_dir: Path, port: int) -> Cluster:
    return Cluster(root=var_dir / "pg", port=port)
