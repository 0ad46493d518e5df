"""ferroflow's S3 artifact backend, end to end: a moto S3 server on 127.0.0.1, ferroflow with
`--artifacts-destination s3://bucket/prefix` (and with `--no-serve-artifacts --default-artifact-root
s3://…`), and the official mlflow client. Objects are checked inside the bucket with boto3.

This file is about ferroflow's own backend, so it runs against ferroflow only (it starts its servers
itself and does not use the ``server`` fixture); it is skipped when COMPAT_SERVERS leaves ferroflow out.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import mlflow
import pytest
import requests

import compat_servers as cs

pytestmark = pytest.mark.skipif(
    "ferroflow" not in cs.requested_servers(),
    reason="S3 backend tests are ferroflow-only (COMPAT_SERVERS leaves ferroflow out)",
)

BUCKET = "ferroflow-compat"
REGION = "us-east-1"
# Recognisable values that must never show up in ferroflow's log.
SECRET_KEY = f"compat-secret-{uuid.uuid4().hex}"
SESSION_TOKEN = f"compat-token-{uuid.uuid4().hex}"
BINARY = bytes(range(256)) * 64 + b"\x00\xff\r\n--end"


def moto_binary() -> Path:
    return Path(sys.executable).parent / "moto_server"


class Moto:
    """A moto S3 server on a free port of 127.0.0.1."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Moto:
        binary = moto_binary()
        if not binary.exists():
            if os.environ.get("CI") == "true":
                pytest.fail(f"{binary} is missing: scripts/python-env installs moto[server]")
            pytest.skip(f"SKIPPED: {binary} is missing (run scripts/python-env)")
        for _attempt in range(3):
            self.port = cs.free_port()
            self.log = open(self.workdir / f"moto-{self.port}.log", "wb")
            self.proc = subprocess.Popen(
                [str(binary), "-H", "127.0.0.1", "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=cs._die_with_parent if sys.platform == "linux" else None,
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    requests.get(self.url, timeout=1)
                    return self
                except requests.RequestException:
                    time.sleep(0.2)
            self.stop()
        pytest.fail("moto_server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None


class FerroflowS3(cs.Server):
    """ferroflow with its artifacts on moto's S3."""

    def __init__(self, workdir: Path, moto: Moto, extra_args: list[str]):
        super().__init__("ferroflow", workdir)
        self.moto = moto
        self.extra_args = extra_args

    def command(self) -> list[str]:
        return [
            str(cs.ferroflow_bin()),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--backend-store-uri",
            self.backend_uri,
            *self.extra_args,
        ]

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(server_s3_env(self.moto))
        env["FERROFLOW_LOG"] = "trace,sqlx=warn,hyper=warn,h2=warn"
        return env

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def server_s3_env(moto: Moto) -> dict[str, str]:
    return {
        "MLFLOW_S3_ENDPOINT_URL": moto.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_DEFAULT_REGION": REGION,
    }


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = Moto(tmp_path_factory.mktemp("moto")).start()
    # The client side (boto3 here, mlflow's S3 repository with --no-serve-artifacts) uses moto too.
    saved = {name: os.environ.get(name) for name in server_s3_env(server)}
    os.environ.update(server_s3_env(server))
    s3().create_bucket(Bucket=BUCKET)
    yield server
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    server.stop()


def s3():
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=os.environ["MLFLOW_S3_ENDPOINT_URL"],
        region_name=REGION,
    )


def keys(prefix: str) -> dict[str, int]:
    """{key: size} of every object under prefix."""
    found = {}
    for page in s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["Size"]
    return found


def start_ferroflow(tmp_path_factory, moto, name, extra_args) -> FerroflowS3:
    problem = cs.binary_problem("ferroflow")
    if problem:
        pytest.fail(problem)
    server = FerroflowS3(tmp_path_factory.mktemp(name), moto, extra_args)
    try:
        server.start()
    except cs.ServerUnavailable as error:
        pytest.fail(str(error))
    return server


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, moto):
    """ferroflow serving artifacts from s3://BUCKET/proxied."""
    server = start_ferroflow(
        tmp_path_factory, moto, "proxied", ["--artifacts-destination", f"s3://{BUCKET}/proxied"]
    )
    yield server
    server.stop()
    assert_no_secret(server)


@pytest.fixture(scope="module")
def direct(tmp_path_factory, moto):
    """ferroflow with --no-serve-artifacts and experiments under s3://BUCKET/direct."""
    server = start_ferroflow(
        tmp_path_factory,
        moto,
        "direct",
        ["--no-serve-artifacts", "--default-artifact-root", f"s3://{BUCKET}/direct"],
    )
    yield server
    server.stop()
    assert_no_secret(server)


def assert_no_secret(server: FerroflowS3) -> None:
    text = server.log_text()
    assert text, "the server wrote a log"
    assert SECRET_KEY not in text
    assert SESSION_TOKEN not in text


@pytest.fixture
def tracking(request):
    """Points the fluent API at the server given by the test's parametrisation fixture."""

    def use(server):
        mlflow.set_tracking_uri(server.url)
        return mlflow.MlflowClient(server.url)

    yield use
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.tracking.fluent._active_experiment_id = None


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_server_info_advertises_multipart_uploads(proxied):
    info = requests.get(f"{proxied.url}/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["multipart_uploads_enabled"] is True
    assert info["multipart_downloads_enabled"] is False


def test_artifacts_round_trip_byte_exact_and_land_in_the_bucket(proxied, tracking, tmp_path):
    client = tracking(proxied)
    experiment_id = client.create_experiment(f"s3-{uuid.uuid4().hex[:8]}")
    src = tmp_path / "src"
    (src / "nested/deeper").mkdir(parents=True)
    files = {
        "model.bin": BINARY,
        "a b~[1].txt": b"special name\n",
        "nested/x.json": b'{"x": 1}',
        "nested/deeper/empty.txt": b"",
    }
    for relative, content in files.items():
        (src / relative).write_bytes(content)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifact(str(src / "model.bin"))
        mlflow.log_artifact(str(src / "a b~[1].txt"), artifact_path="docs")
        mlflow.log_artifacts(str(src / "nested"), artifact_path="tree")
    run_id = run.info.run_id
    assert run.info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"

    listing = sorted((f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id))
    assert listing == [("docs", True, None), ("model.bin", False, len(BINARY)), ("tree", True, None)]

    out = tmp_path / "out"
    local = Path(client.download_artifacts(run_id, "", str(out)))
    assert tree(local) == {
        "model.bin": BINARY,
        "docs/a b~[1].txt": b"special name\n",
        "tree/x.json": b'{"x": 1}',
        "tree/deeper/empty.txt": b"",
    }

    # MLflow's keys, byte for byte, under the destination prefix.
    base = f"proxied/{experiment_id}/{run_id}/artifacts"
    assert keys(f"{base}/") == {
        f"{base}/model.bin": len(BINARY),
        f"{base}/docs/a b~[1].txt": 13,
        f"{base}/tree/x.json": 8,
        f"{base}/tree/deeper/empty.txt": 0,
    }
    body = s3().get_object(Bucket=BUCKET, Key=f"{base}/model.bin")["Body"].read()
    assert body == BINARY


def test_sklearn_model_logs_to_s3_and_loads(proxied, tracking):
    import numpy as np
    from sklearn.linear_model import LinearRegression

    client = tracking(proxied)
    experiment_id = client.create_experiment(f"s3-model-{uuid.uuid4().hex[:8]}")
    features = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LinearRegression().fit(features, 2 * features[:, 0] + 1)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert np.allclose(loaded.predict(np.array([[10.0]])), [21.0])

    stored = keys(f"proxied/{experiment_id}/")
    model_keys = [key for key in stored if info.model_id in key]
    assert any(key.endswith("/MLmodel") for key in model_keys), stored
    # The serialized estimator (skops by default in MLflow 3.17, pickle before).
    assert any(key.endswith(("/model.skops", "/model.pkl")) for key in model_keys), stored


def test_large_file_uses_presigned_multipart_upload(proxied, tracking, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(5 * 1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))
    client = tracking(proxied)
    experiment_id = client.create_experiment(f"s3-mpu-{uuid.uuid4().hex[:8]}")
    content = hashlib.sha256(b"seed").digest() * (11 * 1024 * 1024 // 32) + b"tail"
    big = tmp_path / "big.bin"
    big.write_bytes(content)
    before = request_counts(proxied)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifact(str(big), artifact_path="weights")
    run_id = run.info.run_id
    after = request_counts(proxied)
    assert after["mpu/create"] == before["mpu/create"] + 1
    assert after["mpu/complete"] == before["mpu/complete"] + 1
    assert after["PUT"] == before["PUT"], "the bytes did not go through ferroflow"

    key = f"proxied/{experiment_id}/{run_id}/artifacts/weights/big.bin"
    head = s3().head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == len(content)
    assert head["ETag"].strip('"').endswith("-3"), "three parts sent straight to S3"

    local = client.download_artifacts(run_id, "weights/big.bin", str(tmp_path / "out"))
    assert hashlib.sha256(Path(local).read_bytes()).digest() == hashlib.sha256(content).digest()


def peak_memory_kib(server: FerroflowS3) -> int:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


def test_large_file_streams_through_the_proxy_with_flat_memory(
    proxied, tracking, tmp_path, monkeypatch
):
    """Without multipart, an 80 MiB file goes up in one PUT and comes back through ferroflow; its
    peak memory grows by far less than the file."""
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false")
    client = tracking(proxied)
    experiment_id = client.create_experiment(f"s3-stream-{uuid.uuid4().hex[:8]}")
    content = os.urandom(1024 * 1024) * 80
    big = tmp_path / "stream.bin"
    big.write_bytes(content)
    before = peak_memory_kib(proxied)
    puts = request_counts(proxied)["PUT"]
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifact(str(big))
    assert request_counts(proxied)["PUT"] == puts + 1, "one streamed PUT through ferroflow"
    local = client.download_artifacts(run.info.run_id, "stream.bin", str(tmp_path / "out"))
    assert hashlib.sha256(Path(local).read_bytes()).digest() == hashlib.sha256(content).digest()
    growth_mib = (peak_memory_kib(proxied) - before) / 1024
    assert growth_mib < 48, f"ferroflow's peak memory grew by {growth_mib:.0f} MiB for 80 MiB"


def request_counts(server: FerroflowS3) -> dict[str, int]:
    """How many multipart and upload requests ferroflow logged (one line per request)."""
    lines = server.log_text().splitlines()
    return {
        "mpu/create": sum("route=/api/2.0/mlflow-artifacts/mpu/create/" in line for line in lines),
        "mpu/complete": sum("route=/api/2.0/mlflow-artifacts/mpu/complete/" in line for line in lines),
        "PUT": sum("method=PUT route=/api/2.0/mlflow-artifacts/artifacts/" in line for line in lines),
    }


def test_presigned_part_urls_match_botocore(proxied, monkeypatch):
    """ferroflow's SigV4 query signature for a part is the one botocore computes for the same URL."""
    import datetime

    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    directory = f"0/{uuid.uuid4().hex}/artifacts"
    response = requests.post(
        f"{proxied.url}/api/2.0/mlflow-artifacts/mpu/create/{directory}",
        json={"path": "/tmp/part test.bin", "num_parts": 2},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert [c["part_number"] for c in created["credentials"]] == [1, 2]
    for credential in created["credentials"]:
        url = urlparse(credential["url"])
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        assert query["partNumber"] == str(credential["part_number"])
        assert query["uploadId"] == created["upload_id"]
        assert query["X-Amz-Security-Token"] == SESSION_TOKEN
        assert url.path == f"/{BUCKET}/proxied/{directory}/part%20test.bin"
        signed_at = datetime.datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at)
        request = AWSRequest(
            method="PUT",
            url=f"{url.scheme}://{url.netloc}{url.path}",
            params={"partNumber": query["partNumber"], "uploadId": query["uploadId"]},
        )
        botocore.auth.S3SigV4QueryAuth(
            Credentials("testing", SECRET_KEY, SESSION_TOKEN),
            "s3",
            REGION,
            expires=int(query["X-Amz-Expires"]),
        ).add_auth(request)
        expected = parse_qs(urlparse(request.url).query)["X-Amz-Signature"][0]
        assert query["X-Amz-Signature"] == expected
    aborted = requests.post(
        f"{proxied.url}/api/2.0/mlflow-artifacts/mpu/abort/{directory}",
        json={"path": "/tmp/part test.bin", "upload_id": created["upload_id"]},
        timeout=10,
    )
    assert aborted.status_code == 200, aborted.text
    assert aborted.json() == {}


def test_no_serve_artifacts_with_s3_default_root(direct, tracking, tmp_path):
    client = tracking(direct)
    name = f"s3-direct-{uuid.uuid4().hex[:8]}"
    experiment_id = client.create_experiment(name)
    assert client.get_experiment(experiment_id).artifact_location == (
        f"s3://{BUCKET}/direct/{experiment_id}"
    )
    src = tmp_path / "weights.bin"
    src.write_bytes(BINARY)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        # The client writes straight to S3 (boto3, MLFLOW_S3_ENDPOINT_URL).
        mlflow.log_artifact(str(src), artifact_path="model")
    run_id = run.info.run_id
    root = f"s3://{BUCKET}/direct/{experiment_id}/{run_id}/artifacts"
    assert run.info.artifact_uri == root
    assert keys(f"direct/{experiment_id}/{run_id}/") == {
        f"direct/{experiment_id}/{run_id}/artifacts/model/weights.bin": len(BINARY)
    }

    # The server reads the run's S3 root with its own credentials.
    listing = requests.get(
        f"{direct.url}/api/2.0/mlflow/artifacts/list",
        params={"run_id": run_id, "path": "model"},
        timeout=10,
    )
    assert listing.status_code == 200, listing.text
    assert listing.json() == {
        "root_uri": root,
        "files": [{"path": "model/weights.bin", "is_dir": False, "file_size": len(BINARY)}],
    }
    download = requests.get(
        f"{direct.url}/get-artifact", params={"run_uuid": run_id, "path": "model/weights.bin"},
        timeout=10,
    )
    assert download.status_code == 200
    assert download.content == BINARY
    # The proxied API stays off.
    assert requests.get(f"{direct.url}/api/2.0/mlflow-artifacts/artifacts", timeout=10).status_code == 503


def test_storage_failures_keep_secrets_out_of_the_log(tmp_path_factory, moto):
    server = start_ferroflow(
        tmp_path_factory,
        moto,
        "missing-bucket",
        ["--artifacts-destination", "s3://no-such-bucket/prefix"],
    )
    try:
        base = f"{server.url}/api/2.0/mlflow-artifacts"
        upload = requests.put(f"{base}/artifacts/0/run/artifacts/a.txt", data=b"x", timeout=60)
        assert upload.status_code == 500
        assert upload.json() == {"error_code": "INTERNAL_ERROR", "message": "internal error"}
        listing = requests.get(f"{base}/artifacts", params={"path": "0"}, timeout=60)
        assert listing.status_code == 500
        created = requests.post(
            f"{base}/mpu/create/0/run/artifacts", json={"path": "a.bin", "num_parts": 1}, timeout=60
        )
        assert created.status_code == 500
    finally:
        server.stop()
    text = server.log_text()
    assert "no-such-bucket" in text, "the cause is logged"
    assert SECRET_KEY not in text
    assert SESSION_TOKEN not in text
