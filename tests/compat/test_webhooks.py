"""Registry webhooks through the official client: CRUD and URL rules on the shared servers, and real
deliveries to a local HTTP receiver started by the test (signature verified, a retry observed) on a
server of each kind started with MLflow's variables that allow plain-HTTP loopback targets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

import compat_servers as cs

PUBLIC_URL = "https://8.8.8.8/hook"  # a public IP literal: no DNS lookup, never contacted here


def test_webhook_crud(client, unique):
    name = unique("hook")
    created = client.create_webhook(
        name, PUBLIC_URL, ["prompt_alias.deleted", "model_version_tag.set"],
        description="first", secret="s3cret",
    )
    try:
        assert created.name == name
        assert created.url == PUBLIC_URL
        assert created.description == "first"
        assert created.status.value == "ACTIVE"
        assert sorted(str(e) for e in created.events) == [
            "model_version_tag.set", "prompt_alias.deleted",
        ]
        assert created.creation_timestamp > 0
        assert len(created.webhook_id) == 36

        got = client.get_webhook(created.webhook_id)
        assert got.name == name
        assert created.webhook_id in [w.webhook_id for w in client.list_webhooks(max_results=1000)]

        updated = client.update_webhook(
            created.webhook_id, status="DISABLED", events=["prompt_alias.created"]
        )
        assert updated.status.value == "DISABLED"
        assert [str(e) for e in updated.events] == ["prompt_alias.created"]
        assert updated.name == name
        assert updated.description == "first"
    finally:
        client.delete_webhook(created.webhook_id)
    with pytest.raises(MlflowException) as e:
        client.get_webhook(created.webhook_id)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("url", [
    "http://8.8.8.8/hook",  # https only by default
    "https://127.0.0.1/hook",  # loopback
    "https://10.0.0.1/hook",  # private
    "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
])
def test_webhook_url_refused(client, unique, url):
    with pytest.raises(MlflowException) as e:
        client.create_webhook(unique("hook"), url, ["model_version.created"])
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_webhook_event_refused(client, unique):
    with pytest.raises(MlflowException):
        client.create_webhook(unique("hook"), PUBLIC_URL, ["model_version.deleted"])


class Receiver:
    """A local HTTP endpoint that records every request and answers 503 to the first `failures`."""

    def __init__(self, failures: int):
        self.requests: list[tuple[dict, bytes]] = []
        self.failures = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = 200
                if receiver.failures > 0:
                    receiver.failures -= 1
                    status = 503
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, predicate, timeout: float = 20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [(h, b) for h, b in list(self.requests) if predicate(json.loads(b))]
            if found:
                return found
            time.sleep(0.1)
        return []

    def close(self):
        self.server.shutdown()


def signature(secret: str, headers: dict, body: bytes) -> str:
    content = f"{headers['x-mlflow-delivery-id']}.{headers['x-mlflow-timestamp']}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@pytest.fixture(params=cs.requested_servers())
def open_server(request, tmp_path, monkeypatch):
    """A server of each kind on SQLite that may deliver to plain-HTTP loopback receivers."""
    kind = request.param
    problem = cs.binary_problem(kind)
    if problem:
        pytest.skip(f"{kind} unavailable: {problem}")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    server = cs.Server(kind, tmp_path / kind)
    server.start()
    yield server
    server.stop()


def test_webhook_delivery(open_server):
    receiver = Receiver(failures=1)
    try:
        client = MlflowClient(open_server.url, open_server.url)
        webhook = client.create_webhook(
            "delivery", receiver.url, ["model_version.created", "model_version_alias.created"],
            secret="top-secret",
        )
        client.create_registered_model("delivered")
        client.create_model_version("delivered", "s3://bucket/model", tags={"k": "v"})

        deliveries = receiver.wait(lambda body: body["entity"] == "model_version")
        # The first attempt got a 503 and was retried.
        deadline = time.time() + 20
        while len(deliveries) < 2 and time.time() < deadline:
            time.sleep(0.1)
            deliveries = receiver.wait(lambda body: body["entity"] == "model_version", 1)
        assert len(deliveries) >= 2, receiver.requests
        headers, body = deliveries[-1]
        assert headers["x-mlflow-signature"] == signature("top-secret", headers, body)
        payload = json.loads(body)
        assert payload["action"] == "created"
        assert payload["timestamp"].endswith("+00:00")
        assert payload["data"] == {
            "name": "delivered", "version": "1", "source": "s3://bucket/model", "run_id": None,
            "tags": {"k": "v"}, "description": None,
        }

        client.set_registered_model_alias("delivered", "prod", "1")
        aliases = receiver.wait(lambda body: body["entity"] == "model_version_alias")
        assert json.loads(aliases[0][1])["data"] == {"name": "delivered", "alias": "prod",
                                                    "version": "1"}

        result = client.test_webhook(webhook.webhook_id)
        assert result.success is True
        assert result.response_status == 200
        assert result.response_body == "ok"
    finally:
        receiver.close()


@pytest.mark.interop
@pytest.mark.parametrize("writer,reader", [("mlflow", "ferroflow"), ("ferroflow", "mlflow")])
def test_webhook_secret_interop(tmp_path, monkeypatch, writer, reader):
    """A webhook saved by one server, its secret sealed with the shared key, is delivered signed by the
    other."""
    from test_interop import require_both

    require_both()
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    monkeypatch.setenv("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY",
                       "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")
    database = cs.Database("sqlite", tmp_path / "shared").create()
    receiver = Receiver(failures=0)
    try:
        first = cs.Server(writer, tmp_path / "shared", database)
        first.start()
        try:
            client = MlflowClient(first.url, first.url)
            client.create_webhook("shared", receiver.url, ["registered_model.created"],
                                  secret="shared-secret")
        finally:
            first.stop()
        second = cs.Server(reader, tmp_path / "shared", database)
        second.start()
        try:
            MlflowClient(second.url, second.url).create_registered_model("signed")
            deliveries = receiver.wait(lambda body: body["entity"] == "registered_model")
            assert deliveries, receiver.requests
            headers, body = deliveries[0]
            assert headers["x-mlflow-signature"] == signature("shared-secret", headers, body)
            assert json.loads(body)["data"] == {"name": "signed", "tags": {}, "description": ""}
        finally:
            second.stop()
    finally:
        receiver.close()
        database.drop()
