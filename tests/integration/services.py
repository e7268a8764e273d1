"""Private PostgreSQL and Redis servers for the integration suite, on loopback ports.

Production Airflow runs on PostgreSQL with a Celery (or Kubernetes) executor, so the
integration suite does too: a throwaway PostgreSQL cluster (``initdb`` in a temp dir, started
with ``pg_ctl`` on a free 127.0.0.1 port, as the ``postgres`` user when the suite runs as
root, since PostgreSQL refuses to run as root) and a ``redis-server`` with persistence off.
``make services`` (scripts/install_services.sh) installs Debian's packages; without them the
integration tests skip and say why (``missing_services``).

Durability settings are off (``fsync``, ``synchronous_commit``): the cluster lives for one
test session and speed on a 2-core machine matters more.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REDIS_SERVER = Path("/usr/bin/redis-server")
PG_USER = "postgres"
PG_DATABASE = "airflow"
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian layout), or None."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    for path in reversed(candidates):
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def missing_services() -> str | None:
    """Why the PostgreSQL + Redis stack cannot run here, or None when it can."""
    missing = []
    if postgres_bin() is None:
        missing.append("postgresql")
    if not REDIS_SERVER.exists():
        missing.append("redis-server")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root but `runuser` is missing, so PostgreSQL cannot be started"
    if missing:
        return (
            f"{' and '.join(missing)} not installed; run `make services` "
            f"(apt-get install {' '.join(missing)}, as root)"
        )
    return None


def _as_db_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *cmd]
    return cmd


def _run(cmd: list[str], *, timeout: float = 60.0) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(cmd)}` exited {proc.returncode}: {proc.stderr[-2000:] or proc.stdout}"
        )
    return proc.stdout


@dataclass
class Postgres:
    """A private PostgreSQL cluster with one database, ``airflow``, trusted on loopback."""

    root: Path
    port: int
    bin: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.port}/{PG_DATABASE}"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname={PG_DATABASE}"

    @classmethod
    def start(cls) -> Postgres:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed")
        root = Path(tempfile.mkdtemp(prefix="clarity-it-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, user=PG_USER)
        server = cls(root=root, port=free_port(), bin=bin_dir)
        try:
            server._init_and_start()
        except BaseException:
            server.stop()
            raise
        return server

    def _init_and_start(self) -> None:
        _run(
            _as_db_user(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    PG_USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ]
            ),
            timeout=120,
        )
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.root}",
                "-c listen_addresses=127.0.0.1",
                "-c max_connections=300",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        _run(
            _as_db_user(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_path),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(int(STARTUP_TIMEOUT)),
                    "start",
                ]
            ),
            timeout=STARTUP_TIMEOUT + 10,
        )
        self.psql(f"CREATE DATABASE {PG_DATABASE}", database="postgres")

    def _client(self, program: str) -> list[str]:
        """A PostgreSQL client program, pointed at this server as the superuser."""
        return [str(self.bin / program), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER]

    def psql(self, sql: str, *, database: str = PG_DATABASE) -> str:
        return _run(
            [
                *self._client("psql"),
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-Atc",
                sql,
            ]
        )

    def dump(self) -> bytes:
        """``pg_dump`` of the metadata database, as plain SQL."""
        proc = subprocess.run(
            [*self._client("pg_dump"), PG_DATABASE],
            capture_output=True,
            timeout=120,
            check=True,
        )
        return proc.stdout

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                _run(
                    _as_db_user(
                        [str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "stop"]
                    ),
                    timeout=60,
                )
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Redis:
    """A ``redis-server`` on a loopback port, without persistence: the Celery broker."""

    root: Path
    port: int
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls) -> Redis:
        root = Path(tempfile.mkdtemp(prefix="clarity-it-redis-"))
        port = free_port()
        log = (root / "redis.log").open("ab")
        process = subprocess.Popen(
            [
                str(REDIS_SERVER),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(root),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        server = cls(root=root, port=port, process=process)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.ping():
            if process.poll() is not None or time.monotonic() > deadline:
                text = (root / "redis.log").read_text(errors="replace")[-2000:]
                server.stop()
                raise RuntimeError(f"redis-server did not start: {text}")
            time.sleep(0.1)
        return server

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
