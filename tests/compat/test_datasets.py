"""Dataset inputs (mlflow.log_input) through the official client."""

import json

import mlflow
import pandas as pd
import pytest
import requests


@pytest.fixture
def frames():
    df = pd.DataFrame({"x": [1, 2, 3], "y": [0.5, 1.5, 2.5], "label": ["a", "b", "a"]})
    train = mlflow.data.from_pandas(
        df, source="s3://bucket/train.csv", name="train", targets="label"
    )
    evaluation = mlflow.data.from_pandas(df.head(2), source="s3://bucket/eval.csv", name="eval")
    return df, train, evaluation


def inputs_by_name(run):
    return {di.dataset.name: di for di in run.inputs.dataset_inputs}


def test_log_input_roundtrip(server, client, experiment_id, frames):
    _, train, evaluation = frames
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_input(train, context="training", tags={"split": "v1"})
        mlflow.log_input(evaluation, context="eval")

    got = inputs_by_name(client.get_run(run.info.run_id))
    assert set(got) == {"train", "eval"}

    t = got["train"]
    assert t.dataset.digest == train.digest
    assert t.dataset.source_type == "s3"
    assert json.loads(t.dataset.source) == {"uri": "s3://bucket/train.csv"}
    assert json.loads(t.dataset.schema) == json.loads(train.to_dict()["schema"])
    assert json.loads(t.dataset.profile) == {"num_rows": 3, "num_elements": 9}
    assert {tag.key: tag.value for tag in t.tags} == {
        "mlflow.data.context": "training",
        "split": "v1",
    }

    e = got["eval"]
    assert e.dataset.digest == evaluation.digest
    assert json.loads(e.dataset.profile) == {"num_rows": 2, "num_elements": 6}
    assert {tag.key: tag.value for tag in e.tags} == {"mlflow.data.context": "eval"}

    # the dataset source can be rebuilt from what the server returned
    source = mlflow.data.get_source(t)
    assert source.uri == "s3://bucket/train.csv"


def test_log_same_dataset_twice_is_deduplicated(server, client, experiment_id, frames):
    _, train, _ = frames
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_input(train, context="training")
        mlflow.log_input(train, context="training")
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert [di.dataset.name for di in inputs] == ["train"]


def test_same_dataset_in_two_runs(server, client, experiment_id, frames):
    _, train, _ = frames
    ids = []
    for _ in range(2):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_input(train, context="training")
        ids.append(run.info.run_id)
    for rid in ids:
        (di,) = client.get_run(rid).inputs.dataset_inputs
        assert (di.dataset.name, di.dataset.digest) == ("train", train.digest)


def test_search_runs_by_dataset(server, client, experiment_id, frames):
    _, train, evaluation = frames
    with mlflow.start_run(experiment_id=experiment_id, run_name="with-train") as r1:
        mlflow.log_input(train, context="training")
    with mlflow.start_run(experiment_id=experiment_id, run_name="with-eval") as r2:
        mlflow.log_input(evaluation, context="eval")
    with mlflow.start_run(experiment_id=experiment_id, run_name="none"):
        pass

    def names(flt):
        return sorted(r.info.run_name for r in client.search_runs([experiment_id], flt))

    assert names("datasets.name = 'train'") == ["with-train"]
    assert names("datasets.name != 'train'") == ["with-eval"]
    assert names("datasets.name LIKE '%a%'") == ["with-eval", "with-train"]
    assert names(f"datasets.digest = '{evaluation.digest}'") == ["with-eval"]
    assert names("datasets.context = 'training'") == ["with-train"]
    assert names("datasets.name IN ('eval', 'other')") == ["with-eval"]

    (found,) = client.search_runs([experiment_id], "datasets.name = 'train'")
    assert found.info.run_id == r1.info.run_id
    (di,) = found.inputs.dataset_inputs
    assert di.dataset.digest == train.digest
    assert r2.info.run_id != r1.info.run_id


def test_ui_search_datasets(server, experiment_id, frames):
    _, train, evaluation = frames
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_input(train, context="training")
        mlflow.log_input(evaluation, context="eval")
    r = requests.post(
        f"{server.url}/ajax-api/2.0/mlflow/experiments/search-datasets",
        json={"experiment_ids": [experiment_id]},
    )
    assert r.status_code == 200, r.text
    summaries = r.json()["dataset_summaries"]
    assert sorted(summaries, key=lambda s: s["name"]) == [
        {"experiment_id": experiment_id, "name": "eval", "digest": evaluation.digest,
         "context": "eval"},
        {"experiment_id": experiment_id, "name": "train", "digest": train.digest,
         "context": "training"},
    ]
