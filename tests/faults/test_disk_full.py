"""A full disk under the artifact store, and under the SQLite database.

ferroflow serves artifacts from a 4 MiB tmpfs (mounted by the test; needs root, as CI runs). A filler
file takes all but 64 KiB of it, then artifacts larger than what is left are uploaded: by raw PUT (1 MiB,
and 8 MiB streamed, which the server must answer without waiting for the whole body or resetting the
connection) and by the official client's `log_artifact`. Each upload must fail quickly with MLflow's
error JSON naming the cause (no hang, no panic, no connection reset); no partial or temporary file may be
left on the disk or listed; the run's metadata and its earlier artifact stay intact and writable. Once the
filler is removed, the same uploads succeed and read back byte for byte.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import requests

import faultkit
from faultkit import Api, SmallFs, cs

pytestmark = pytest.mark.timeout(180)

ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"


def _files_on(root) -> list[str]:
    found = []
    for directory, _, files in os.walk(root):
        found += [os.path.relpath(os.path.join(directory, name), root) for name in files]
    return sorted(found)


def test_full_artifact_disk_fails_cleanly_and_recovers(servers, tmp_path, monkeypatch):
    small_fs = SmallFs("4m")
    problem = small_fs.mount()
    if problem:
        faultkit.unavailable(problem)
    try:
        _check_full_disk(servers, tmp_path, small_fs, monkeypatch)
    finally:
        for server in servers:
            server.stop()
        small_fs.umount()


def _check_full_disk(servers, tmp_path, small_fs: SmallFs, monkeypatch):
    server = cs.Server("ferroflow", tmp_path, cs.Database("sqlite", tmp_path))
    server.artifacts = small_fs.path / "mlartifacts"
    servers.append(server)
    server.start()
    api = Api(server.url)
    experiment_id = api.create_experiment()
    run_id = api.create_run(experiment_id)
    artifact_uri = api.get("runs/get", {"run_id": run_id}).json()["run"]["info"]["artifact_uri"]
    assert artifact_uri.startswith("mlflow-artifacts:/")
    run_root = artifact_uri.removeprefix("mlflow-artifacts:/").lstrip("/")

    def put(name: str, data) -> tuple[requests.Response | None, float, str | None]:
        began = time.monotonic()
        try:
            response = api.session.put(f"{server.url}{ARTIFACTS_API}/{run_root}/{name}", data=data,
                                       timeout=60)
        except requests.RequestException as error:
            return None, time.monotonic() - began, f"{type(error).__name__}: {error}"
        return response, time.monotonic() - began, None

    def listing() -> list[str]:
        answer = api.get("artifacts/list", {"run_id": run_id}).json()
        return sorted(entry["path"] for entry in answer.get("files", []))

    before = b"kept intact\n" * 100
    response, _, _ = put("before.txt", before)
    assert response is not None and response.status_code == 200, response

    filler = small_fs.fill(leave_bytes=64 * 1024)
    free_when_full = small_fs.free_bytes()
    one_mib = os.urandom(1024 * 1024)

    refusals = []
    for name, data in [("big.bin", one_mib),
                       ("huge.bin", (os.urandom(256 * 1024) for _ in range(32))),  # 8 MiB, chunked
                       ("nested/dir/big.bin", one_mib)]:
        response, seconds, connection_error = put(name, data)
        assert connection_error is None, f"{name}: connection failed instead of an answer: " \
                                         f"{connection_error}"
        body = response.json()  # JSON, not a bare 500 page
        refusals.append((name, response.status_code, body.get("error_code"), round(seconds, 2)))
        # RESOURCE_EXHAUSTED (429 in MLflow's table): gRPC's code for "the file system is out of space".
        assert response.status_code == 429, body
        assert body.get("error_code") == "RESOURCE_EXHAUSTED", body
        assert "no space left" in body.get("message", "").lower(), body
        assert seconds < 15, f"{name}: took {seconds:.1f}s"

    # The official client with its retries off: an exception at once, naming the 429 (the client
    # retries 429, so with retries on it would wait for space; see below).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=server.url)
    local_file = tmp_path / "client.bin"
    local_file.write_bytes(one_mib)
    began = time.monotonic()
    with pytest.raises(MlflowException) as raised:
        client.log_artifact(run_id, str(local_file), "from_client")
    client_seconds = time.monotonic() - began
    assert "429" in str(raised.value), str(raised.value)
    assert client_seconds < 15

    # Nothing partial or temporary is left, nothing half-written is listed.
    files = _files_on(small_fs.path)
    leftovers = [name for name in files if name not in ("filler.bin",
                                                          f"mlartifacts/{run_root}/before.txt")]
    assert leftovers == [], leftovers
    assert listing() == ["before.txt"], listing()  # not even an empty directory of a failed upload
    assert small_fs.free_bytes() >= free_when_full

    # Metadata stayed consistent and writable; the earlier artifact reads back intact.
    api.ok("runs/log-batch", {"run_id": run_id, "params": [{"key": "after_full", "value": "1"}]})
    run = api.get("runs/get", {"run_id": run_id}).json()["run"]
    assert run["info"]["status"] == "RUNNING"
    assert {"key": "after_full", "value": "1"} in run["data"]["params"]
    downloaded = api.session.get(f"{server.url}{ARTIFACTS_API}/{run_root}/before.txt", timeout=30)
    assert downloaded.status_code == 200 and downloaded.content == before

    # Space frees while the official client (retries on) waits: its upload lands once there is room.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    freeing = threading.Timer(1.5, filler.unlink)
    freeing.start()
    began = time.monotonic()
    client.log_artifact(run_id, str(local_file), "from_client")
    retried_seconds = time.monotonic() - began
    freeing.join()

    # And the same raw uploads work again.
    response, _, _ = put("big.bin", one_mib)
    assert response is not None and response.status_code == 200, response.text
    response, _, _ = put("nested/dir/big.bin", one_mib)
    assert response is not None and response.status_code == 200, response.text
    for name in ("big.bin", "nested/dir/big.bin", "from_client/client.bin"):
        downloaded = api.session.get(f"{server.url}{ARTIFACTS_API}/{run_root}/{name}", timeout=30)
        assert downloaded.status_code == 200 and downloaded.content == one_mib, name
    assert "big.bin" in listing()

    faultkit.report("full artifact disk (4 MiB tmpfs)", refusals=refusals,
                    client_error_seconds=round(client_seconds, 2),
                    client_retry_succeeded_after_seconds=round(retried_seconds, 1),
                    leftover_files=len(leftovers), recovered_uploads=3, lost=0)


def test_full_database_disk_keeps_batches_whole_and_recovers(servers, tmp_path):
    """The SQLite database on a 3 MiB tmpfs that fills up: log-batch requests are refused with
    RESOURCE_EXHAUSTED "the metadata store is out of disk space", reads still work, no batch is
    partial, and once space frees writes succeed again."""
    small_fs = SmallFs("3m")
    problem = small_fs.mount()
    if problem:
        faultkit.unavailable(problem)
    try:
        database = cs.Database("sqlite", small_fs.path)
        server = cs.Server("ferroflow", tmp_path, database)
        servers.append(server)
        server.start()
        api = Api(server.url)
        run_id = api.create_run(api.create_experiment())
        shape = faultkit.BatchShape(metrics=200, params=50, tags=50)
        ledger = faultkit.Ledger()
        refusals = []

        def send(batch_id: str):
            ledger.attempt(batch_id)
            response = api.post("runs/log-batch", faultkit.batch_body(run_id, batch_id, shape))
            if response.status_code == 200:
                ledger.ack(batch_id)
            else:
                refusals.append((response.status_code, response.json()))

        filler = small_fs.fill(leave_bytes=0)
        for number in range(12):
            send(f"full{number}")
        assert refusals, "the full disk refused nothing: the test did not fill it"
        for status, body in refusals:
            assert status == 429, body
            assert body == {"error_code": "RESOURCE_EXHAUSTED",
                            "message": "the metadata store is out of disk space"}, body
        # Reads still work while the disk is full.
        assert api.get("runs/get", {"run_id": run_id}).status_code == 200

        filler.unlink()
        for number in range(3):
            send(f"freed{number}")
        assert all(f"freed{number}" in ledger.acknowledged for number in range(3)), refusals[-3:]
        server.stop()  # checkpoint and close before reading the file directly
        assert database.execute("PRAGMA integrity_check") == [("ok",)]
        found = faultkit.census(database, [run_id])
        verdict = faultkit.judge_batches(found, ledger.acknowledged, ledger.attempted, shape)
        faultkit.report("full database disk (SQLite on a 3 MiB tmpfs)", refused=len(refusals),
                        **verdict.line())
        assert verdict.partial == [], verdict.partial[:5]
        assert verdict.lost == [], verdict.lost[:5]
    finally:
        for server in servers:
            server.stop()
        small_fs.umount()
