"""Evaluation dataset interop: one server writes datasets and records into a fresh database, the other
reads them back identically and merges more records into them (a record whose inputs another server
wrote must be updated, not added: both compute the same input hash), and the first reads that back.
Needs both servers (skipped loudly otherwise, like test_interop.py)."""

from __future__ import annotations

import json

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.genai import datasets as genai_datasets

import compat_servers as cs
from test_interop import require_backend, require_both

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

API = "/api/3.0/mlflow/datasets"

INTEROP_CASES = [
    pytest.param("sqlite", "ferroflow", "mlflow", id="sqlite-ferroflow-writes-mlflow-reads"),
    pytest.param("sqlite", "mlflow", "ferroflow", id="sqlite-mlflow-writes-ferroflow-reads"),
    pytest.param("postgres", "ferroflow", "mlflow", id="postgres-ferroflow-writes-mlflow-reads"),
    pytest.param("mysql", "ferroflow", "mlflow", id="mysql-ferroflow-writes-mlflow-reads"),
]


@pytest.fixture
def shared_database(request, tmp_path):
    backend = request.node.callspec.params["backend"]
    require_backend(backend)
    database = cs.Database(backend, tmp_path / "shared").create()
    yield database
    database.drop()


def fill(url: str) -> dict:
    mlflow.set_tracking_uri(url)
    experiment_id = MlflowClient(url).create_experiment("evals-interop")
    dataset = genai_datasets.create_dataset(
        name="interop_qa", experiment_id=experiment_id, tags={"team": "qa", "note": "ünïcode ✓"}
    )
    dataset.merge_records(
        [
            {
                "inputs": {"question": "What is MLflow?", "lang": "en", "n": 1.5},
                "expectations": {"answer": "A platform", "facts": ["a", "b"]},
                "outputs": {"text": "An ML platform"},
            },
            {
                "inputs": {"question": "Qu'est-ce que Rust ?", "nested": {"b": [1, None], "a": True}},
                "expectations": {"answer": "Un langage"},
                "source": {"source_type": "TRACE", "source_data": {"trace_id": "tr-0123"}},
            },
        ]
    )
    return {"dataset_id": dataset.dataset_id, "experiment_id": experiment_id}


def snapshot(url: str, ids: dict) -> dict:
    dataset_id = ids["dataset_id"]
    dataset = requests.get(f"{url}{API}/{dataset_id}", timeout=10).json()["dataset"]
    for key in ("tags", "schema", "profile"):
        if key in dataset:
            dataset[key] = json.loads(dataset[key])
    experiments = requests.get(f"{url}{API}/{dataset_id}/experiment-ids", timeout=10).json()
    records = json.loads(
        requests.get(f"{url}{API}/{dataset_id}/records", timeout=10).json()["records"]
    )
    records.sort(key=lambda record: record["dataset_record_id"])
    found = requests.post(
        f"{url}{API}/search",
        json={"experiment_ids": [ids["experiment_id"]], "filter_string": "name = 'interop_qa'"},
        timeout=10,
    ).json()
    return {
        "dataset": dataset,
        "experiment_ids": experiments.get("experiment_ids", []),
        "records": records,
        "search": [item["dataset_id"] for item in found.get("datasets", [])],
    }


def write_more(url: str, ids: dict) -> None:
    records = [
        # The first record of fill(), its inputs in another key order: an update.
        {"inputs": {"n": 1.5, "lang": "en", "question": "What is MLflow?"},
         "expectations": {"score": 5}},
        {"inputs": {"question": "new"}, "outputs": "plain"},
    ]
    reply = requests.post(
        f"{url}{API}/{ids['dataset_id']}/records",
        json={"records": json.dumps(records)},
        timeout=10,
    )
    assert reply.json() == {"inserted_count": 1, "updated_count": 1}
    requests.patch(
        f"{url}{API}/{ids['dataset_id']}/tags", json={"tags": json.dumps({"stage": "two"})},
        timeout=10,
    ).raise_for_status()


@pytest.mark.parametrize("backend,writer,reader", INTEROP_CASES)
def test_eval_dataset_interop(tmp_path, writer, reader, backend, shared_database):
    require_both()
    workdir = tmp_path / "shared"
    first = cs.Server(writer, workdir, shared_database)
    try:
        first.start()
        ids = fill(first.url)
        before = snapshot(first.url, ids)
    finally:
        first.stop()
    assert len(before["records"]) == 2
    assert before["search"] == [ids["dataset_id"]]

    second = cs.Server(reader, workdir, shared_database)
    try:
        second.start()
        assert snapshot(second.url, ids) == before, f"{reader} reads {writer}'s datasets differently"
        write_more(second.url, ids)
        written = snapshot(second.url, ids)
    finally:
        second.stop()
    assert written["dataset"]["profile"] == {"num_records": 3}
    assert written["dataset"]["tags"]["stage"] == "two"
    merged = next(r for r in written["records"] if r["inputs"]["question"] == "What is MLflow?")
    assert merged["expectations"] == {"answer": "A platform", "facts": ["a", "b"], "score": 5}

    third = cs.Server(writer, workdir, shared_database)
    try:
        third.start()
        assert snapshot(third.url, ids) == written, f"{writer} reads {reader}'s writes differently"
    finally:
        third.stop()
