"""Starting and stopping the servers under test (ferroflow and the reference `mlflow server`)."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
KNOWN_SERVERS = ("ferroflow", "mlflow")

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

    def __init__(self, kind: str, workdir: Path):
        if kind not in KNOWN_SERVERS:
            raise ValueError(kind)
        self.kind = kind
        self.workdir = Path(workdir)
        self.db_path = self.workdir / "mlflow.db"
        self.artifacts = self.workdir / "mlartifacts"
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._log_file = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backend_uri(self) -> str:
        return f"sqlite:///{self.db_path}"

    def __repr__(self) -> str:
        return f"<{self.kind} server {self.url if self.port else '(stopped)'}>"

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
            return [str(ferroflow_bin()), "server", *common]
        return [str(mlflow_bin()), "server", *common, "--workers", "1"]

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
            self._log_file.write(f"$ {' '.join(self.command())}\n".encode())
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
            f"command: {' '.join(self.command())}\n"
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

