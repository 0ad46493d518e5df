"""Fault and load tests: ferroflow under SIGKILL, a full artifact or database disk, a restarted
PostgreSQL, 64 concurrent SQLite clients and a short soak. Each test prints one `[faults] ...` line with what it tried
and what was lost (always nothing); `docs/reliability.md` explains them.

The servers are started with the compat suite's helpers (`tests/compat/compat_servers.py`); these tests
run against ferroflow only (they test ferroflow's guarantees, not MLflow's wire behaviour).

Needs: the ferroflow binary (FERROFLOW_BIN, default target/debug/ferroflow); the machine's PostgreSQL
(FERROFLOW_TEST_POSTGRES) for the PostgreSQL kill test; root for the tmpfs of the full-disk test; the
PostgreSQL server binaries (initdb) for the private cluster restarted under load. Outside CI what is
missing is skipped with a loud notice; under CI=true it fails.
"""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import pytest  # noqa: E402

import faultkit  # noqa: E402
from faultkit import cs  # noqa: E402


def pytest_report_header(config):
    return [f"fault tests; ferroflow binary: {cs.ferroflow_bin()}"]


@pytest.fixture(scope="session", autouse=True)
def _ferroflow_binary():
    problem = cs.binary_problem("ferroflow")
    if problem:
        pytest.fail(f"fault tests need the ferroflow binary: {problem}", pytrace=False)


@pytest.fixture
def servers():
    """Servers a test starts; stopped (and their databases dropped) afterwards, logs shown on failure."""
    started: list[cs.Server] = []
    yield started
    for server in started:
        server.stop()
        server.database.drop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for server in getattr(item, "funcargs", {}).get("servers", []) or []:
            report.sections.append((f"{server!r} log (tail)", server.log_tail(30)))


@pytest.fixture
def backend_database(tmp_path):
    """`make(backend)`: a fresh database on the machine's SQLite/PostgreSQL, skipped loudly when absent."""
    made: list[cs.Database] = []

    def make(backend: str) -> cs.Database:
        problem = cs.backend_problem(backend)
        if problem:
            faultkit.unavailable(f"backend {backend}: {problem}")
        database = cs.Database(backend, tmp_path / backend).create()
        made.append(database)
        return database

    yield make
    for database in made:
        database.drop()
