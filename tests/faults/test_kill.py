"""SIGKILL in the middle of a stream of log-batch requests.

Several clients send log-batch requests without pause (each batch: 200 metrics, 50 params, 50 tags, every
key prefixed with the batch's id); after a random moment ferroflow is killed with SIGKILL (no shutdown,
requests in flight), restarted on the same database, and the stream resumes; three rounds. Afterwards the
rows are counted straight in the database: every batch must be whole (all 300 rows and its 200 latest
metrics) or absent, and every batch that was answered 200 must be whole.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
import requests

import faultkit
from faultkit import Api, BatchShape, Ledger, batch_body, cs

SHAPE = BatchShape(metrics=200, params=50, tags=50)
ROUNDS = 5
CLIENTS = 6

pytestmark = pytest.mark.timeout(240)


def _stream(api: Api, run_id: str, prefix: str, ledger: Ledger, stop: threading.Event,
            http_errors: list):
    counter = 0
    while not stop.is_set():
        batch_id = f"{prefix}n{counter}"
        counter += 1
        ledger.attempt(batch_id)
        try:
            response = api.post("runs/log-batch", batch_body(run_id, batch_id, SHAPE))
        except requests.RequestException as error:
            # The server died under this request: its batch is unacknowledged.
            ledger.fail(f"connection: {type(error).__name__}")
            return
        if response.status_code == 200:
            ledger.ack(batch_id)
        else:
            http_errors.append(faultkit.describe(response))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigkill_mid_log_batch_leaves_whole_batches(backend, servers, backend_database):
    database = backend_database(backend)
    server = cs.Server("ferroflow", database.workdir, database)
    servers.append(server)
    server.start()
    api = Api(server.url)
    experiment_id = api.create_experiment()
    run_ids = [api.create_run(experiment_id) for _ in range(CLIENTS)]

    ledger = Ledger()
    http_errors: list[str] = []
    in_flight_at_kill = []
    rng = random.Random(7)
    for round_number in range(ROUNDS):
        api = Api(server.url)
        stop = threading.Event()
        acked_before = len(ledger.acknowledged)
        threads = [threading.Thread(target=_stream, daemon=True,
                                    args=(api, run_ids[index], f"r{round_number}c{index}", ledger,
                                          stop, http_errors))
                   for index in range(CLIENTS)]
        for thread in threads:
            thread.start()
        # Let some batches land, then kill at a random moment while every client has one in flight.
        deadline = time.monotonic() + 30
        while len(ledger.acknowledged) < acked_before + 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.1, 0.6))
        with ledger.lock:
            in_flight_at_kill.append(len(ledger.attempted) - len(ledger.acknowledged)
                                     - len(ledger.failures))
        faultkit.kill_server(server)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        server.start()  # the same database, a new process

    # The server took everything it acknowledged; an error answer while it was up would be a bug.
    assert http_errors == [], http_errors[:5]

    # After the last restart the server reads and writes normally.
    api = Api(server.url)
    after = "afterkill"
    api.ok("runs/log-batch", batch_body(run_ids[0], after, SHAPE))
    ledger.attempt(after)
    ledger.ack(after)
    run = api.get("runs/get", {"run_id": run_ids[0]}).json()["run"]
    assert any(param["key"] == f"{after}.p0" for param in run["data"]["params"])
    if backend == "sqlite":
        assert database.execute("PRAGMA integrity_check") == [("ok",)]

    found = faultkit.census(database, run_ids)
    verdict = faultkit.judge_batches(found, ledger.acknowledged, ledger.attempted, SHAPE)
    faultkit.report(f"sigkill x{ROUNDS} during log-batch ({backend})", **verdict.line(),
                    in_flight_at_kills=in_flight_at_kill)
    assert verdict.partial == [], f"partial batches: {verdict.partial[:5]}"
    assert verdict.lost == [], f"acknowledged batches lost: {verdict.lost[:5]}"
    # The kills really hit requests in flight (else the test proved nothing).
    assert verdict.unacknowledged >= ROUNDS
