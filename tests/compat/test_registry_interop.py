"""Registry interop: one server fills the model and prompt registry of a fresh database, the other reads
every registered model, version, tag, alias and prompt back identically, writes more, and the first reads
that back. Needs both servers (skipped loudly otherwise, like test_interop.py)."""

from __future__ import annotations

import mlflow
import mlflow.genai
import pytest
import requests
from mlflow import MlflowClient

import compat_servers as cs
from test_interop import require_backend, require_both

API = "/api/2.0/mlflow"
pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]


def fill(url: str) -> None:
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    client = MlflowClient(url, url)
    client.create_registered_model("model-a", tags={"team": "ml", "note": "ünïcode ✓"},
                                   description="first model")
    for index in range(3):
        client.create_model_version("model-a", f"s3://bucket/model-a/{index}",
                                    tags={"index": str(index)}, description=f"v{index + 1}")
    client.transition_model_version_stage("model-a", "1", "Staging")
    client.transition_model_version_stage("model-a", "2", "Production")
    client.set_registered_model_alias("model-a", "champion", "2")
    client.set_registered_model_alias("model-a", "challenger", "3")
    client.delete_model_version("model-a", "3")
    client.create_registered_model("model-b")
    client.create_model_version("model-b", "s3://bucket/model-b")
    client.rename_registered_model("model-b", "model-b-renamed")
    mlflow.genai.register_prompt("prompt-a", "Hello {{name}}", commit_message="one")
    mlflow.genai.register_prompt("prompt-a", [{"role": "user", "content": "Hi {{name}}"}])
    mlflow.genai.set_prompt_alias("prompt-a", "prod", 1)


def jget(url: str, endpoint: str, **params) -> dict:
    answer = requests.get(f"{url}{API}{endpoint}", params=params, timeout=30)
    assert answer.status_code == 200, f"{endpoint}: {answer.text}"
    return answer.json()


def normalized(value):
    """Each model's latest versions sorted by version: MLflow's order of them depends on its query plan."""
    if isinstance(value, dict):
        return {
            key: sorted((normalized(v) for v in item), key=lambda v: int(v["version"]))
            if key == "latest_versions" else normalized(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [normalized(item) for item in value]
    return value


def snapshot(url: str) -> dict:
    prompt_filter = "tags.`mlflow.prompt.is_prompt` = 'true'"
    return normalized({
        "models": jget(url, "/registered-models/search", max_results=100),
        "prompts": jget(url, "/registered-models/search", filter=prompt_filter),
        "versions": jget(url, "/model-versions/search", max_results=1000),
        "prompt_versions": jget(url, "/model-versions/search", filter=prompt_filter),
        "model_a": jget(url, "/registered-models/get", name="model-a"),
        "champion": jget(url, "/registered-models/alias", name="model-a", alias="champion"),
        "latest": jget(url, "/registered-models/alias", name="model-a", alias="latest"),
        "prompt_prod": jget(url, "/registered-models/alias", name="prompt-a", alias="prod"),
        "download": jget(url, "/model-versions/get-download-uri", name="model-a", version="2"),
        "get_latest_versions": requests.post(
            f"{url}{API}/registered-models/get-latest-versions",
            json={"name": "model-a"}, timeout=30,
        ).json(),
    })


def write_more(url: str) -> None:
    client = MlflowClient(url, url)
    assert client.create_model_version("model-a", "s3://bucket/model-a/4").version == "4"
    client.set_registered_model_alias("model-a", "champion", "4")
    client.set_model_version_tag("model-a", "1", "reviewed", "yes")
    client.delete_registered_model_alias("model-a", "challenger")
    client.rename_registered_model("model-b-renamed", "model-b-again")


def differences(a, b, where: str = "") -> list[str]:
    """The paths where two JSON values differ, for a readable failure."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            found += differences(a.get(key), b.get(key), f"{where}.{key}")
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        found = []
        for index, (left, right) in enumerate(zip(a, b)):
            found += differences(left, right, f"{where}[{index}]")
        return found
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


INTEROP_CASES = [
    pytest.param("sqlite", "mlflow", "ferroflow", id="sqlite-mlflow-writes-ferroflow-reads"),
    pytest.param("sqlite", "ferroflow", "mlflow", id="sqlite-ferroflow-writes-mlflow-reads"),
    pytest.param("postgres", "mlflow", "ferroflow", id="postgres-mlflow-writes-ferroflow-reads"),
    pytest.param("mysql", "mlflow", "ferroflow", id="mysql-mlflow-writes-ferroflow-reads"),
]


@pytest.fixture
def shared_database(request, tmp_path):
    backend = request.node.callspec.params["backend"]
    require_backend(backend)
    database = cs.Database(backend, tmp_path / "shared").create()
    yield database
    database.drop()


@pytest.mark.parametrize("backend,writer,reader", INTEROP_CASES)
def test_registry_interop(tmp_path, writer, reader, backend, shared_database):
    require_both()
    workdir = tmp_path / "shared"
    first = cs.Server(writer, workdir, shared_database)
    try:
        first.start()
        fill(first.url)
        before = snapshot(first.url)
    finally:
        first.stop()

    second = cs.Server(reader, workdir, shared_database)
    try:
        second.start()
        after = snapshot(second.url)
        problems = differences(before, after)
        assert not problems, f"{reader} reads {writer}'s registry differently:\n" + "\n".join(
            problems[:15]
        )
        write_more(second.url)
        written = snapshot(second.url)
    finally:
        second.stop()

    third = cs.Server(writer, workdir, shared_database)
    try:
        third.start()
        problems = differences(written, snapshot(third.url))
        assert not problems, f"{writer} reads {reader}'s writes differently:\n" + "\n".join(
            problems[:15]
        )
        client = MlflowClient(third.url, third.url)
        assert client.get_model_version_by_alias("model-a", "champion").version == "4"
        assert client.get_model_version("model-a", "1").tags == {"index": "0", "reviewed": "yes"}
        assert client.get_registered_model("model-b-again").latest_versions[0].version == "1"
    finally:
        third.stop()
