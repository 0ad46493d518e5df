"""Helpers of the fault and load tests: a raw HTTP client that records what the server acknowledged,
batches that can be recognized row by row afterwards, reading them back from the database, a private
PostgreSQL instance, a small tmpfs, and the server's resident memory.

The servers themselves are started with `tests/compat/compat_servers.py` (`Server`, `Database`).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "compat"))

import compat_servers as cs  # noqa: E402

API = "/api/2.0/mlflow"


def in_ci() -> bool:
    return cs.in_ci()


def unavailable(message: str):
    """Skips loudly outside CI; under CI=true a missing tool or privilege is a failure."""
    if in_ci():
        pytest.fail(f"fault test cannot run under CI=true: {message}", pytrace=False)
    print(f"\n!!! SKIPPING fault test: {message} !!!", file=sys.stderr)
    pytest.skip(f"NOT RUN: {message}")


def report(title: str, **numbers) -> str:
    """Prints one line of what a fault test tried and found (shown with -s and kept in the log)."""
    line = f"[faults] {title}: " + ", ".join(f"{key}={value}" for key, value in numbers.items())
    print(line, file=sys.stderr, flush=True)
    return line


def now_ms() -> int:
    return int(time.time() * 1000)


class Api:
    """A thin JSON client of one server; one `requests.Session` per thread."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def post(self, path: str, body: dict) -> requests.Response:
        return self.session.post(f"{self.base_url}{API}/{path}", json=body, timeout=self.timeout)

    def get(self, path: str, params: dict | None = None) -> requests.Response:
        return self.session.get(f"{self.base_url}{API}/{path}", params=params,
                                timeout=self.timeout)

    def ok(self, path: str, body: dict) -> dict:
        response = self.post(path, body)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        return response.json()

    def create_experiment(self, name: str | None = None) -> str:
        name = name or f"faults-{uuid.uuid4().hex[:12]}"
        return self.ok("experiments/create", {"name": name})["experiment_id"]

    def create_run(self, experiment_id: str) -> str:
        body = {"experiment_id": experiment_id, "start_time": now_ms()}
        return self.ok("runs/create", body)["run"]["info"]["run_id"]


# --- Batches that can be recognized afterwards -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BatchShape:
    metrics: int = 200
    params: int = 50
    tags: int = 50


def batch_body(run_id: str, batch_id: str, shape: BatchShape) -> dict:
    """A log-batch whose every key starts with `batch_id.`, so its rows can be counted per batch."""
    timestamp = now_ms()
    return {
        "run_id": run_id,
        "metrics": [{"key": f"{batch_id}.m{index}", "value": index * 0.5, "timestamp": timestamp,
                     "step": index} for index in range(shape.metrics)],
        "params": [{"key": f"{batch_id}.p{index}", "value": f"v{index}"}
                   for index in range(shape.params)],
        "tags": [{"key": f"{batch_id}.t{index}", "value": f"t{index}"}
                 for index in range(shape.tags)],
    }


@dataclasses.dataclass
class BatchCensus:
    """Per batch id, how many metric, latest-metric, param and tag rows the database holds."""

    metrics: Counter
    latest: Counter
    params: Counter
    tags: Counter

    def rows(self, batch_id: str) -> tuple[int, int, int, int]:
        return (self.metrics[batch_id], self.latest[batch_id], self.params[batch_id],
                self.tags[batch_id])

    def batch_ids(self) -> set[str]:
        return set(self.metrics) | set(self.latest) | set(self.params) | set(self.tags)


def _prefix_counts(rows) -> Counter:
    counts: Counter = Counter()
    for (key,) in rows:
        if "." in key and not key.startswith("mlflow."):  # MLflow's own tags are not batches
            counts[key.split(".", 1)[0]] += 1
    return counts


def census(database: cs.Database, run_ids: list[str]) -> BatchCensus:
    """Reads every row of `run_ids` straight from the database (not through the server)."""
    quoted = ", ".join(f"'{run_id}'" for run_id in run_ids)  # run ids are hex: safe to inline
    rows = {}
    for table in ("metrics", "latest_metrics", "params", "tags"):
        key = '"key"' if database.backend != "mysql" else "`key`"
        rows[table] = database.execute(f"SELECT {key} FROM {table} WHERE run_uuid IN ({quoted})")
    return BatchCensus(_prefix_counts(rows["metrics"]), _prefix_counts(rows["latest_metrics"]),
                       _prefix_counts(rows["params"]), _prefix_counts(rows["tags"]))


@dataclasses.dataclass
class BatchVerdict:
    acknowledged: int
    unacknowledged: int
    present: int
    unacknowledged_present: int
    partial: list
    lost: list

    def line(self) -> dict:
        return {"acknowledged": self.acknowledged, "unacknowledged": self.unacknowledged,
                "present_after": self.present,
                "unacknowledged_but_present": self.unacknowledged_present,
                "partial": len(self.partial), "lost": len(self.lost)}


def judge_batches(found: BatchCensus, acknowledged: set[str], attempted: set[str],
                  shape: BatchShape) -> BatchVerdict:
    """Every batch whole or absent, every acknowledged batch whole."""
    full = (shape.metrics, shape.metrics, shape.params, shape.tags)
    partial, present = [], set()
    for batch_id in attempted | found.batch_ids():
        rows = found.rows(batch_id)
        if rows == full:
            present.add(batch_id)
        elif rows != (0, 0, 0, 0):
            partial.append((batch_id, rows))
    lost = sorted(acknowledged - present)
    return BatchVerdict(
        acknowledged=len(acknowledged),
        unacknowledged=len(attempted - acknowledged),
        present=len(present),
        unacknowledged_present=len((attempted - acknowledged) & present),
        partial=partial,
        lost=lost,
    )


class Ledger:
    """What clients sent and what the server acknowledged, with the failures seen, thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempted: set[str] = set()
        self.acknowledged: set[str] = set()
        self.failures: list[tuple[float, str]] = []  # (monotonic time, description)
        self.first_ack_at: float | None = None

    def attempt(self, item: str):
        with self.lock:
            self.attempted.add(item)

    def ack(self, item: str):
        with self.lock:
            self.acknowledged.add(item)
            if self.first_ack_at is None:
                self.first_ack_at = time.monotonic()

    def fail(self, description: str):
        with self.lock:
            self.failures.append((time.monotonic(), description))


def describe(response: requests.Response) -> str:
    try:
        body = response.json()
        return f"{response.status_code} {body.get('error_code')}: {body.get('message')}"
    except ValueError:
        return f"{response.status_code} (not JSON) {response.text[:200]!r}"


# --- Processes ----------------------------------------------------------------------------------------


def kill_server(server: cs.Server) -> None:
    """SIGKILL, no shutdown: what an OOM kill or a power cut of the process looks like."""
    proc = server.proc
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    server.stop()


def memory_status(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon and RssFile of `pid`, in bytes."""
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name = line.split(":", 1)[0]
            if name in ("VmRSS", "RssAnon", "RssFile"):
                found[name] = int(line.split()[1]) * 1024
    return found


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


# --- A small file system that fills up ----------------------------------------------------------------


class SmallFs:
    """A tmpfs of `size` mounted on a fresh directory (needs root); `umount()` removes it."""

    def __init__(self, size: str):
        self.path = Path(tempfile.mkdtemp(prefix="ff-faults-fs-"))
        self.size = size
        self.mounted = False

    def mount(self) -> str | None:
        """Mounts; returns why it could not, or None."""
        if os.geteuid() != 0:
            return "mounting a small tmpfs needs root"
        if shutil.which("mount") is None:
            return "no mount command"
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755",
                               "tmpfs", str(self.path)], capture_output=True, text=True)
        if done.returncode != 0:
            return f"mount -t tmpfs failed: {done.stderr.strip()}"
        self.mounted = True
        return None

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def fill(self, leave_bytes: int = 0) -> Path:
        """Writes a filler file until at most `leave_bytes` are left."""
        filler = self.path / "filler.bin"
        chunk = b"\0" * 65536
        with open(filler, "ab") as handle:
            while self.free_bytes() > leave_bytes:
                want = min(len(chunk), self.free_bytes() - leave_bytes)
                try:
                    handle.write(chunk[:max(want, 1)])
                    handle.flush()
                except OSError:
                    break
        return filler

    def umount(self):
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)
            self.mounted = False
        shutil.rmtree(self.path, ignore_errors=True)


# --- A private PostgreSQL ------------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in a temp dir, a free port on 127.0.0.1), so that it can
    be restarted under load without touching the machine's shared server. As root it runs as the
    `postgres` user (PostgreSQL refuses to run as root)."""

    def __init__(self):
        self.bin = postgres_bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="ff-faults-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = cs.free_port()
        self.user = None
        self.started = False

    def problem(self) -> str | None:
        if self.bin is None:
            return "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin"
        if os.geteuid() == 0:
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no `postgres` user to run PostgreSQL as"
            self.user = "postgres"
        return None

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              cwd=self.dir)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n"
                               f"{done.stdout}\n{done.stderr}\n{self.log_tail()}")
        return done

    def init(self) -> PrivatePostgres:
        if self.user:
            shutil.chown(self.dir, self.user, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync",
                  "-E", "UTF8", "--locale=C")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.dir}'\nmax_connections = 60\n"
                       "fsync = on\nsynchronous_commit = on\n")
        return self

    def start(self):
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        self.started = True

    def stop(self, mode: str = "fast"):
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop",
                  check=False)
        self.started = False

    def restart(self, mode: str = "fast"):
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "-t",
                  "60", "restart")
        self.started = True

    def uri(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres"):
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                      dbname=database, connect_timeout=5)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else None
        finally:
            connection.close()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no postgres log)"

    def destroy(self):
        if self.started:
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateDatabase(cs.Database):
    """A database on a `PrivatePostgres`, usable wherever the compat helpers take a `Database`."""

    def __init__(self, cluster: PrivatePostgres, workdir: Path):
        super().__init__("postgres", workdir)
        self.cluster = cluster

    def create(self) -> PrivateDatabase:
        self.cluster.execute(f'CREATE DATABASE "{self.name}"')
        self.created = True
        return self

    def drop(self) -> None:
        self.created = False  # the cluster is removed whole

    def uri(self, kind: str) -> str:
        return self.cluster.uri(self.name)

    def execute(self, sql: str):
        return self.cluster.execute(sql, self.name)


def group_failures(failures: list[tuple[float, str]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for _, description in failures:
        counts[description.split(":", 1)[0]] += 1
    return dict(counts)
