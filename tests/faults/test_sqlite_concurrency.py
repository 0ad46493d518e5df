"""64 concurrent clients on SQLite.

64 threads, each with its own HTTP connection, send a mix of create-run, log-metric, log-batch and
set-tag requests (and a get-run now and then) as fast as the server answers. Every request must be
answered 200 (no "database is locked", no 503), and afterwards the rows counted in the database must be
exactly what was acknowledged.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

import faultkit
from faultkit import Api, cs

CLIENTS = 64
OPERATIONS = 32  # per client
BATCH_METRICS, BATCH_PARAMS, BATCH_TAGS = 20, 5, 5

pytestmark = pytest.mark.timeout(240)


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.runs: set[str] = set()
        self.metric_rows = 0
        self.param_rows = 0
        self.tag_rows = 0  # set-tag and log-batch tags (runs/create adds MLflow's own tags too)
        self.requests = 0
        self.errors: list[str] = []
        self.latencies: list[float] = []

    def add(self, **counts):
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def _client(api: Api, experiment_id: str, index: int, tally: Tally, start: threading.Barrier):
    start.wait()
    run_id = None

    def call(path, body, method="post"):
        began = time.monotonic()
        try:
            response = (api.post(path, body) if method == "post" else api.get(path, body))
        except requests.RequestException as error:
            tally.add(requests=1)
            with tally.lock:
                tally.errors.append(f"{path}: connection {type(error).__name__}: {error}")
            return None
        with tally.lock:
            tally.requests += 1
            tally.latencies.append(time.monotonic() - began)
            if response.status_code != 200:
                tally.errors.append(f"{path}: {faultkit.describe(response)}")
                return None
        return response.json()

    for step in range(OPERATIONS):
        kind = step % 5
        if run_id is None or kind == 0:
            answer = call("runs/create", {"experiment_id": experiment_id,
                                          "start_time": faultkit.now_ms(),
                                          "run_name": f"c{index}-{step}"})
            if answer:
                run_id = answer["run"]["info"]["run_id"]
                with tally.lock:
                    tally.runs.add(run_id)
            continue
        if kind == 1:
            if call("runs/log-metric", {"run_id": run_id, "key": f"c{index}.loss",
                                        "value": step * 0.1, "timestamp": faultkit.now_ms(),
                                        "step": step}) is not None:
                tally.add(metric_rows=1)
        elif kind == 2:
            body = {
                "run_id": run_id,
                "metrics": [{"key": f"c{index}.s{step}.m{number}", "value": number,
                             "timestamp": faultkit.now_ms(), "step": step}
                            for number in range(BATCH_METRICS)],
                "params": [{"key": f"c{index}.s{step}.p{number}", "value": str(number)}
                           for number in range(BATCH_PARAMS)],
                "tags": [{"key": f"c{index}.s{step}.t{number}", "value": str(number)}
                         for number in range(BATCH_TAGS)],
            }
            if call("runs/log-batch", body) is not None:
                tally.add(metric_rows=BATCH_METRICS, param_rows=BATCH_PARAMS, tag_rows=BATCH_TAGS)
        elif kind == 3:
            if call("runs/set-tag", {"run_id": run_id, "key": f"c{index}.tag{step}",
                                     "value": "x"}) is not None:
                tally.add(tag_rows=1)
        else:
            call("runs/get", {"run_id": run_id}, method="get")


def test_64_clients_on_sqlite_no_locked_database_no_lost_write(servers, tmp_path):
    database = cs.Database("sqlite", tmp_path)
    server = cs.Server("ferroflow", tmp_path, database)
    servers.append(server)
    server.start()
    api = Api(server.url, timeout=60)
    experiment_id = api.create_experiment()

    tally = Tally()
    start = threading.Barrier(CLIENTS)
    threads = [threading.Thread(target=_client, args=(api, experiment_id, index, tally, start),
                                daemon=True) for index in range(CLIENTS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=200)
    elapsed = time.monotonic() - began
    assert not any(thread.is_alive() for thread in threads), "clients still running"

    log_text = server.log_path.read_text(errors="replace")
    locked_in_log = log_text.lower().count("database is locked")

    runs = database.execute(f"SELECT run_uuid FROM runs WHERE experiment_id = {int(experiment_id)}")
    run_ids = {run_id for (run_id,) in runs}
    in_runs = ", ".join(f"'{run_id}'" for run_id in run_ids)
    metric_rows = database.execute(f"SELECT COUNT(*) FROM metrics WHERE run_uuid IN ({in_runs})")[0][0]
    param_rows = database.execute(f"SELECT COUNT(*) FROM params WHERE run_uuid IN ({in_runs})")[0][0]
    tag_rows = database.execute(
        f"SELECT COUNT(*) FROM tags WHERE run_uuid IN ({in_runs}) AND key LIKE 'c%.%'")[0][0]

    latencies = sorted(tally.latencies)
    faultkit.report(
        "64 concurrent clients on SQLite",
        requests=tally.requests, seconds=round(elapsed, 1),
        requests_per_second=round(tally.requests / elapsed),
        p50_ms=round(latencies[len(latencies) // 2] * 1000, 1),
        p99_ms=round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        errors=len(tally.errors), database_is_locked_in_log=locked_in_log,
        runs=f"{len(run_ids)}/{len(tally.runs)}", metric_rows=f"{metric_rows}/{tally.metric_rows}",
        param_rows=f"{param_rows}/{tally.param_rows}", tag_rows=f"{tag_rows}/{tally.tag_rows}")

    assert tally.errors == [], tally.errors[:10]
    assert locked_in_log == 0
    assert tally.requests == CLIENTS * OPERATIONS
    # Nothing lost, nothing doubled.
    assert run_ids == tally.runs
    assert metric_rows == tally.metric_rows
    assert param_rows == tally.param_rows
    assert tag_rows == tally.tag_rows
