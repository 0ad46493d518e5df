"""PostgreSQL restarted under load, on a private cluster (the machine's shared server is never touched).

A PostgreSQL cluster of the test's own (initdb in a temp dir, a free port) serves one ferroflow. Eight
raw HTTP clients stream log-batch requests and one official `mlflow` client (with its retries on, as
users run it) logs metrics, while the cluster is restarted twice: `pg_ctl restart -m fast` (connections
terminated, 57P01) and `pg_ctl stop -m immediate` followed by a start a second later (a crash: no
goodbye on the sockets, crash recovery on start). ferroflow is not restarted.

Checked: every failed request is TEMPORARILY_UNAVAILABLE (503) and overlapped an outage; requests sent
after the database is back succeed without any action (the pool recovers); the mlflow client never
raised (it retried the 503s); no batch is partial and nothing acknowledged is missing.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import requests

import faultkit
from faultkit import Api, BatchShape, Ledger, PrivateDatabase, PrivatePostgres, batch_body, cs

SHAPE = BatchShape(metrics=50, params=10, tags=10)
CLIENTS = 8

pytestmark = pytest.mark.timeout(240)


class Calls:
    """Each request's start and end time and outcome."""

    def __init__(self):
        self.lock = threading.Lock()
        self.records: list[tuple[float, float, str | None]] = []  # (start, end, failure or None)

    def add(self, start: float, end: float, failure: str | None):
        with self.lock:
            self.records.append((start, end, failure))


def _stream(api: Api, run_id: str, prefix: str, ledger: Ledger, calls: Calls,
            stop: threading.Event):
    counter = 0
    while not stop.is_set():
        batch_id = f"{prefix}n{counter}"
        counter += 1
        ledger.attempt(batch_id)
        began = time.monotonic()
        try:
            response = api.post("runs/log-batch", batch_body(run_id, batch_id, SHAPE))
        except requests.RequestException as error:
            calls.add(began, time.monotonic(), f"connection {type(error).__name__}")
            continue
        if response.status_code == 200:
            ledger.ack(batch_id)
            calls.add(began, time.monotonic(), None)
        else:
            calls.add(began, time.monotonic(), faultkit.describe(response))
            time.sleep(0.05)


def _mlflow_client(url: str, run_id: str, stop: threading.Event, logged: list, raised: list):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url)
    step = 0
    while not stop.is_set():
        try:
            client.log_metric(run_id, "client.loss", 1.0 / (step + 1), step=step)
            logged.append(step)
        except Exception as error:  # the client gave up: that is what must not happen
            raised.append(f"{type(error).__name__}: {error}")
        step += 1


def test_postgres_restarts_under_load_lose_no_acknowledged_write(servers, tmp_path, monkeypatch):
    cluster = PrivatePostgres()
    problem = cluster.problem()
    if problem:
        faultkit.unavailable(problem)
    # The official client's own retries, as users run it (faster backoff than the default).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "8")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    server = None
    try:
        cluster.init()
        cluster.start()
        database = PrivateDatabase(cluster, tmp_path).create()
        server = cs.Server("ferroflow", tmp_path, database)
        servers.append(server)
        server.start()
        pid = server.proc.pid
        api = Api(server.url, timeout=60)
        experiment_id = api.create_experiment()
        run_ids = [api.create_run(experiment_id) for _ in range(CLIENTS + 1)]

        ledger, calls, stop = Ledger(), Calls(), threading.Event()
        logged, raised = [], []
        threads = [threading.Thread(target=_stream, daemon=True,
                                    args=(api, run_ids[index], f"c{index}", ledger, calls, stop))
                   for index in range(CLIENTS)]
        threads.append(threading.Thread(target=_mlflow_client, daemon=True,
                                        args=(server.url, run_ids[CLIENTS], stop, logged, raised)))
        for thread in threads:
            thread.start()

        outages = []
        time.sleep(2.0)
        began = time.monotonic()
        cluster.restart("fast")
        outages.append(("restart -m fast", began, time.monotonic()))
        time.sleep(2.0)
        began = time.monotonic()
        cluster.stop("immediate")
        time.sleep(1.0)
        cluster.start()
        outages.append(("stop -m immediate + start", began, time.monotonic()))
        # Recovery: keep the load on for a while after the database is back.
        time.sleep(4.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
        assert not any(thread.is_alive() for thread in threads)
        assert server.proc.poll() is None and server.proc.pid == pid, "ferroflow was not restarted"

        failures = [record for record in calls.records if record[2] is not None]
        outside = [record for record in failures
                   if not any(start <= end_outage and end >= start_outage
                              for _, start_outage, end_outage in outages
                              for start, end in [record[:2]])]
        not_503 = [record[2] for record in failures
                   if not record[2].startswith("503 TEMPORARILY_UNAVAILABLE")]
        last_outage_end = outages[-1][2]
        after = [record for record in calls.records if record[0] > last_outage_end + 0.5]
        failed_after = [record for record in after if record[2] is not None]

        found = faultkit.census(database, run_ids[:CLIENTS])
        verdict = faultkit.judge_batches(found, ledger.acknowledged, ledger.attempted, SHAPE)
        client_rows = database.execute(
            f"SELECT COUNT(DISTINCT step) FROM metrics WHERE run_uuid = '{run_ids[CLIENTS]}' "
            "AND key = 'client.loss'")[0][0]
        faultkit.report(
            "postgres restarted (fast, immediate) under load",
            requests=len(calls.records), failed=len(failures),
            failures=faultkit.group_failures([(0, failure[2]) for failure in failures]),
            outage_seconds=[round(end - start, 1) for _, start, end in outages],
            requests_after_recovery=len(after), failed_after_recovery=len(failed_after),
            mlflow_client_logged=len(logged), mlflow_client_raised=len(raised),
            mlflow_client_rows=client_rows, **verdict.line())

        assert not_503 == [], not_503[:5]
        assert outside == [], f"failures outside the outages: {outside[:5]}"
        assert len(after) > 0 and failed_after == [], failed_after[:5]
        assert raised == [], raised[:3]
        assert verdict.partial == [], verdict.partial[:5]
        assert verdict.lost == [], verdict.lost[:5]
        assert client_rows == len(logged)
    finally:
        if server is not None:
            server.stop()
        cluster.destroy()
        os.environ.pop("MLFLOW_TRACKING_URI", None)
