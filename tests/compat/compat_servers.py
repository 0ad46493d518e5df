"""Starting and stopping the servers under test (ferroflow and the reference `mlflow server`), and the
fresh databases they run on (a SQLite file, or a new database on the PostgreSQL or MariaDB server)."""

from __future__ import annotations

import atexit
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
KNOWN_SERVERS = ("ferroflow", "mlflow")
KNOWN_BACKENDS = ("sqlite", "postgres", "mysql")

# Admin connections that may create databases (the same variables as the Rust store suite).
ADMIN_URIS = {
    "postgres": os.environ.get("FERROFLOW_TEST_POSTGRES",
                               "postgresql://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("FERROFLOW_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test"),
}

# mlflow's uvicorn + Flask stack takes 10-20 s to come up on a busy 2-core machine.
START_TIMEOUT = {"ferroflow": 30.0, "mlflow": 90.0}


class ServerUnavailable(Exception):
    pass


_RUNNING: set[Server] = set()


def _die_with_parent():  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the server if the test process dies without cleaning up."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@atexit.register
def _stop_all():
    for srv in list(_RUNNING):
        srv.stop()


def requested_servers() -> list[str]:
    raw = os.environ.get("COMPAT_SERVERS", "ferroflow,mlflow")
    names = [s.strip() for s in raw.split(",") if s.strip()]
    unknown = [n for n in names if n not in KNOWN_SERVERS]
    if unknown:
        raise SystemExit(f"COMPAT_SERVERS: unknown server(s) {unknown}; known: {KNOWN_SERVERS}")
    if not names:
        raise SystemExit("COMPAT_SERVERS is empty")
    return names


def requested_backends() -> list[str]:
    raw = os.environ.get("COMPAT_BACKENDS", ",".join(KNOWN_BACKENDS))
    names = [s.strip() for s in raw.split(",") if s.strip()]
    unknown = [n for n in names if n not in KNOWN_BACKENDS]
    if unknown:
        raise SystemExit(f"COMPAT_BACKENDS: unknown backend(s) {unknown}; known: {KNOWN_BACKENDS}")
    if not names:
        raise SystemExit("COMPAT_BACKENDS is empty")
    return names


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


class _Admin:
    """Where the admin URI of a database server points."""

    def __init__(self, backend: str):
        parts = urlsplit(ADMIN_URIS[backend])
        self.backend = backend
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (5432 if backend == "postgres" else 3306)
        self.user = unquote(parts.username) if parts.username else (
            "postgres" if backend == "postgres" else "root")
        self.password = unquote(parts.password) if parts.password else ""
        self.database = parts.path.lstrip("/") or ("postgres" if backend == "postgres" else "")

    def connect(self, database: str | None = None):
        if self.backend == "postgres":
            import psycopg2

            connection = psycopg2.connect(host=self.host, port=self.port, user=self.user,
                                          password=self.password or None,
                                          dbname=database or self.database, connect_timeout=5)
            connection.autocommit = True
            return connection
        import pymysql

        return pymysql.connect(host=self.host, port=self.port, user=self.user,
                               password=self.password, database=database or self.database or None,
                               connect_timeout=5, autocommit=True)

    def execute(self, sql: str, database: str | None = None):
        connection = self.connect(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else None
        finally:
            connection.close()


_BACKEND_PROBLEMS: dict[str, str | None] = {}


def backend_problem(backend: str) -> str | None:
    """Why `backend` cannot be used (its server unreachable), or None. Checked once per run."""
    if backend == "sqlite":
        return None
    if backend not in _BACKEND_PROBLEMS:
        try:
            _Admin(backend).execute("SELECT 1")
            _BACKEND_PROBLEMS[backend] = None
        except Exception as e:  # any driver or network failure means: not usable
            _BACKEND_PROBLEMS[backend] = (
                f"cannot reach {redact(ADMIN_URIS[backend])}: {type(e).__name__}: {e}".strip())
    return _BACKEND_PROBLEMS[backend]


def redact(text: str) -> str:
    """`text` with the password of every URI in it hidden."""
    return re.sub(r"(://[^:/@\s]+):[^@\s]+@", r"\1:***@", text)


class Database:
    """A fresh database for one server (or one interop test): a SQLite file under `workdir`, or a new
    database on the PostgreSQL/MariaDB server, dropped by `drop()`."""

    def __init__(self, backend: str, workdir: Path):
        if backend not in KNOWN_BACKENDS:
            raise ValueError(backend)
        self.backend = backend
        self.workdir = Path(workdir)
        self.name = f"ff_compat_{uuid.uuid4().hex[:12]}"
        self.created = False

    def create(self) -> Database:
        if self.backend == "postgres":
            _Admin("postgres").execute(f'CREATE DATABASE "{self.name}"')
        elif self.backend == "mysql":
            _Admin("mysql").execute(f"CREATE DATABASE `{self.name}`")
        self.created = True
        return self

    def drop(self) -> None:
        if not self.created or self.backend == "sqlite":
            return
        try:
            if self.backend == "postgres":
                _Admin("postgres").execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            else:
                _Admin("mysql").execute(f"DROP DATABASE IF EXISTS `{self.name}`")
        except Exception as e:
            print(f"warning: could not drop test database {self.name}: {e}", file=sys.stderr)
        self.created = False

    def uri(self, kind: str) -> str:
        """The backend store URI of this database for server `kind` (mlflow names its driver)."""
        if self.backend == "sqlite":
            return f"sqlite:///{self.workdir / 'mlflow.db'}"
        admin = _Admin(self.backend)
        credentials = quote(admin.user, safe="")
        if admin.password:
            credentials += ":" + quote(admin.password, safe="")
        if self.backend == "postgres":
            scheme = "postgresql+psycopg2" if kind == "mlflow" else "postgresql"
        else:
            scheme = "mysql+pymysql" if kind == "mlflow" else "mysql"
        return f"{scheme}://{credentials}@{admin.host}:{admin.port}/{self.name}"

    def execute(self, sql: str):
        """Runs `sql` on this database; returns the rows of a query."""
        if self.backend == "sqlite":
            import sqlite3

            connection = sqlite3.connect(self.workdir / "mlflow.db")
            try:
                rows = connection.execute(sql).fetchall()
                connection.commit()
                return rows
            finally:
                connection.close()
        return _Admin(self.backend).execute(sql, self.name)


def ferroflow_bin() -> Path:
    p = Path(os.environ.get("FERROFLOW_BIN", "target/debug/ferroflow"))
    return p if p.is_absolute() else REPO_ROOT / p


def mlflow_bin() -> Path:
    if os.environ.get("MLFLOW_BIN"):
        return Path(os.environ["MLFLOW_BIN"])
    # The mlflow CLI installed next to the interpreter running pytest (the repo's .venv).
    return Path(sys.executable).parent / "mlflow"


def binary_problem(kind: str) -> str | None:
    """Why `kind` cannot be started, or None if its executable is there."""
    path = ferroflow_bin() if kind == "ferroflow" else mlflow_bin()
    if not path.exists():
        hint = " (build it with `cargo build -p ferroflow-cli`)" if kind == "ferroflow" else ""
        return f"{path} does not exist{hint}"
    if not os.access(path, os.X_OK):
        return f"{path} is not executable"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process on 127.0.0.1 with its DB and artifacts under `workdir`.

    Several Server objects may share a workdir (the interop test restarts on the same DB);
    each start writes its own log file.
    """

    def __init__(self, kind: str, workdir: Path, database: Database | None = None):
        if kind not in KNOWN_SERVERS:
            raise ValueError(kind)
        self.kind = kind
        self.workdir = Path(workdir)
        self.database = database or Database("sqlite", self.workdir)
        self.backend = self.database.backend
        self.db_path = self.workdir / "mlflow.db"
        self.artifacts = self.workdir / "mlartifacts"
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._log_file = None
        # Extra command-line arguments for both kinds (e.g. `--app-name basic-auth`).
        self.extra_args: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backend_uri(self) -> str:
        return self.database.uri(self.kind)

    def __repr__(self) -> str:
        return f"<{self.kind} server on {self.backend} {self.url if self.port else '(stopped)'}>"

    def command(self) -> list[str]:
        common = [
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--backend-store-uri",
            self.backend_uri,
            "--artifacts-destination",
            str(self.artifacts),
        ]
        if self.kind == "ferroflow":
            return [str(ferroflow_bin()), "server", *common, *self.extra_args]
        return [str(mlflow_bin()), "server", *common, "--workers", "1", *self.extra_args]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Don't let a tracking URI or experiment from the test process leak into the server.
        for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID",
                  "MLFLOW_EXPERIMENT_NAME"):
            env.pop(k, None)
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        env["NO_COLOR"] = "1"
        env["DO_NOT_TRACK"] = "true"
        if self.kind == "mlflow":
            # No huey job runner (7 extra processes); nothing in this suite uses server jobs.
            env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
            env["PYTHONUNBUFFERED"] = "1"
        else:
            env.setdefault("RUST_BACKTRACE", "1")
            env.setdefault("FERROFLOW_LOG", "debug,sqlx=warn")  # one line per request
        return env

    def start(self) -> Server:
        problem = binary_problem(self.kind)
        if problem:
            raise ServerUnavailable(problem)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        n = len(list(self.workdir.glob(f"{self.kind}-*.log")))
        self.log_path = self.workdir / f"{self.kind}-{n}.log"
        last_error = "not started"
        for _attempt in range(3):  # a port taken between free_port() and bind: retry
            self.port = free_port()
            self._log_file = open(self.log_path, "ab")
            self._log_file.write(f"$ {redact(' '.join(self.command()))}\n".encode())
            self._log_file.flush()
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() also ends its workers
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            _RUNNING.add(self)
            ok, last_error = self._wait_healthy(START_TIMEOUT[self.kind])
            if ok:
                return self
            self.stop()
            if "address already in use" not in self.log_tail().lower():
                break
        raise ServerUnavailable(
            f"{self.kind} did not become healthy: {last_error}\n"
            f"command: {redact(' '.join(self.command()))}\n"
            f"--- last lines of {self.log_path} ---\n{self.log_tail()}"
        )

    def _wait_healthy(self, timeout: float) -> tuple[bool, str]:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                return False, f"process exited with code {rc}"
            try:
                r = requests.get(f"{self.url}/health", timeout=2)
                if r.status_code == 200:
                    return True, ""
                last = f"/health answered {r.status_code}"
            except requests.RequestException as e:
                last = f"/health: {type(e).__name__}"
            time.sleep(0.2)
        return False, f"timed out after {timeout:.0f}s ({last})"

    def stop(self) -> None:
        _RUNNING.discard(self)
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        if proc is not None:
            # Whatever is left of the group (mlflow's uvicorn worker): kill it.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

