"""Compat suite: drives the official mlflow client against ferroflow and a real `mlflow server`.

Every test that asks for the ``server`` fixture (directly or through ``client`` etc.) runs once
per server named in ``COMPAT_SERVERS`` (default ``ferroflow,mlflow``). The fixture is
session-scoped, so pytest groups all tests of one server together and starts each server once.

Environment:
  COMPAT_SERVERS   comma-separated subset of ``ferroflow,mlflow``
  FERROFLOW_BIN    path of the ferroflow binary (default <repo>/target/debug/ferroflow)
  MLFLOW_BIN       path of the ``mlflow`` CLI (default: the one next to this Python)

Each server's DB, artifacts and log live in pytest's tmp dir (pytest keeps the last three runs'
under /tmp/pytest-of-$USER/), e.g. .../ferroflow-server0/ferroflow-0.log.
"""

from __future__ import annotations

import os

# Must be set before mlflow is imported anywhere: a 5xx must fail fast instead of retrying for
# minutes, and nothing should try to phone home from a test machine.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import uuid  # noqa: E402

import pytest  # noqa: E402

import compat_servers as cs  # noqa: E402

SERVERS = cs.requested_servers()


def pytest_report_header(config):
    return [
        f"compat servers: {', '.join(SERVERS)}",
        f"ferroflow binary: {cs.ferroflow_bin()}",
        f"mlflow cli: {cs.mlflow_bin()}",
    ]


@pytest.fixture(scope="session", params=SERVERS)
def server(request, tmp_path_factory):
    """A running server (ferroflow or mlflow) on a fresh sqlite DB and artifact dir."""
    kind = request.param
    tmp = tmp_path_factory.mktemp(f"{kind}-server")
    srv = cs.Server(kind, tmp)
    error = None
    try:
        srv.start()
    except cs.ServerUnavailable as e:
        error = str(e)
    if error:
        pytest.fail(f"{kind} server unavailable: {error}", pytrace=False)
    yield srv
    srv.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing test, attach the tail of that server's log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        srv = getattr(item, "funcargs", {}).get("server")
        if isinstance(srv, cs.Server):
            report.sections.append((f"{srv.kind} server log (tail)", srv.log_tail(25)))


@pytest.fixture(autouse=True)
def _tracking_uri(request):
    """Point the fluent API at the test's server and end any run the test left active."""
    import mlflow

    if "server" not in request.fixturenames:
        yield
        return
    srv = request.getfixturevalue("server")
    mlflow.set_tracking_uri(srv.url)
    mlflow.set_registry_uri(srv.url)
    try:
        yield
    finally:
        while mlflow.active_run() is not None:
            try:
                mlflow.end_run()
            except Exception:
                # The run may have been deleted by the test; drop it from the fluent stack.
                mlflow.tracking.fluent._active_run_stack.get().pop()
        mlflow.tracking.fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)


@pytest.fixture
def client(server):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=server.url, registry_uri=server.url)


@pytest.fixture
def unique():
    """unique("exp") -> "exp-<12 hex>": names that never collide across tests or reruns."""

    def make(prefix: str = "compat") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    return make


@pytest.fixture
def experiment_id(client, unique):
    """A fresh, empty experiment."""
    return client.create_experiment(unique("exp"))
