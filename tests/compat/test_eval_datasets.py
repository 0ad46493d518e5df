"""MLflow 3 evaluation datasets through the official client (`mlflow.genai.datasets`): create, get,
search, tags, merge_records (upsert keyed by inputs), to_df, record deletion, experiment links and
delete, plus the REST messages the client never shows (records pages, errors)."""

import json

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.genai import datasets as genai_datasets


@pytest.fixture
def dataset(experiment_id, unique):
    created = genai_datasets.create_dataset(
        name=unique("evalds"), experiment_id=experiment_id, tags={"team": "qa", "mlflow.user": "ann"}
    )
    yield created
    genai_datasets.delete_dataset(dataset_id=created.dataset_id)


def test_create_and_get(dataset, experiment_id):
    assert dataset.dataset_id.startswith("d-") and len(dataset.dataset_id) == 34
    assert dataset.tags == {"team": "qa", "mlflow.user": "ann"}
    assert dataset.created_by == "ann" and dataset.last_updated_by == "ann"
    assert len(dataset.digest) == 8
    assert dataset.created_time == dataset.last_update_time > 0

    fetched = genai_datasets.get_dataset(dataset_id=dataset.dataset_id)
    assert fetched.name == dataset.name
    assert fetched.tags == {"team": "qa", "mlflow.user": "ann"}
    assert fetched.digest == dataset.digest
    assert fetched.schema is None and fetched.profile is None
    assert fetched.experiment_ids == [experiment_id]

    by_name = genai_datasets.get_dataset(name=dataset.name)
    assert by_name.dataset_id == dataset.dataset_id


def test_merge_records_upserts_by_inputs_and_to_df(dataset):
    dataset.merge_records(
        [
            {
                "inputs": {"question": "What is MLflow?", "lang": "en"},
                "expectations": {"answer": "A platform"},
                "tags": {"mlflow.user": "bob"},
            },
            {
                "inputs": {"question": "What is Rust?"},
                "expectations": {"answer": "A language"},
                "source": {"source_type": "human", "source_data": {"source_id": "reviewer-1"}},
            },
        ]
    )
    # Same inputs in another key order: merged into the first record, not added.
    dataset.merge_records(
        [
            {
                "inputs": {"lang": "en", "question": "What is MLflow?"},
                "expectations": {"score": 5},
                "outputs": "An ML platform",
            }
        ]
    )
    fresh = genai_datasets.get_dataset(dataset_id=dataset.dataset_id)
    assert json.loads(fresh.profile) == {"num_records": 2}
    schema = json.loads(fresh.schema)
    assert schema["inputs"] == {"question": "string", "lang": "string"}
    assert schema["expectations"] == {"answer": "string", "score": "integer"}
    assert schema["outputs"] == "string"
    assert fresh.digest != dataset.digest
    assert fresh.last_update_time >= dataset.last_update_time

    frame = fresh.to_df()
    assert len(frame) == 2
    by_question = {row["inputs"]["question"]: row for _, row in frame.iterrows()}
    merged = by_question["What is MLflow?"]
    assert merged["expectations"] == {"answer": "A platform", "score": 5}
    assert merged["outputs"] == "An ML platform"
    # The client stamps each merged record with the current user, over the "bob" given first.
    assert set(merged["tags"]) == {"mlflow.user"}
    rust = by_question["What is Rust?"]
    assert rust["source_type"] == "HUMAN"
    assert rust["source_id"] == "reviewer-1"
    assert rust["source"].source_data == {"source_id": "reviewer-1"}
    assert rust["outputs"] == {}
    assert rust["dataset_record_id"].startswith("dr-")

    deleted = fresh.delete_records([rust["dataset_record_id"]])
    assert deleted == 1
    again = genai_datasets.get_dataset(dataset_id=dataset.dataset_id)
    assert json.loads(again.profile) == {"num_records": 1}
    assert [inputs["question"] for inputs in again.to_df()["inputs"]] == ["What is MLflow?"]


def test_records_pages_and_counts_over_rest(server, dataset):
    base = f"{server.url}/api/3.0/mlflow/datasets/{dataset.dataset_id}"
    records = [{"inputs": {"n": index}} for index in range(5)]
    reply = requests.post(f"{base}/records", json={"records": json.dumps(records)}, timeout=10)
    assert reply.status_code == 200
    assert reply.json() == {"inserted_count": 5, "updated_count": 0}
    reply = requests.post(f"{base}/records", json={"records": json.dumps(records[:2])}, timeout=10)
    assert reply.json() == {"inserted_count": 0, "updated_count": 2}

    seen = []
    token = None
    pages = 0
    while True:
        params = {"max_results": 2}
        if token:
            params["page_token"] = token
        page = requests.get(f"{base}/records", params=params, timeout=10).json()
        seen.extend(record["inputs"]["n"] for record in json.loads(page["records"]))
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    assert sorted(seen) == [0, 1, 2, 3, 4]
    assert pages == 3


def test_tags_set_and_delete(dataset):
    genai_datasets.set_dataset_tags(dataset.dataset_id, {"team": "ml", "stage": "prod"})
    assert genai_datasets.get_dataset(dataset_id=dataset.dataset_id).tags == {
        "team": "ml",
        "stage": "prod",
        "mlflow.user": "ann",
    }
    genai_datasets.delete_dataset_tag(dataset.dataset_id, "stage")
    genai_datasets.delete_dataset_tag(dataset.dataset_id, "never-set")
    assert genai_datasets.get_dataset(dataset_id=dataset.dataset_id).tags == {
        "team": "ml",
        "mlflow.user": "ann",
    }


def test_search_filters_orders_and_pages(client, experiment_id, unique):
    prefix = unique("search")
    made = [
        genai_datasets.create_dataset(
            name=f"{prefix}_{index}", experiment_id=experiment_id, tags={"parity": str(index % 2)}
        )
        for index in range(3)
    ]
    try:
        found = genai_datasets.search_datasets(
            experiment_ids=[experiment_id], filter_string=f"name LIKE '{prefix}_%'",
            order_by=["name ASC"],
        )
        assert [d.name for d in found] == [f"{prefix}_0", f"{prefix}_1", f"{prefix}_2"]

        odd = genai_datasets.search_datasets(
            experiment_ids=[experiment_id], filter_string="tags.parity = '1'"
        )
        assert [d.name for d in odd] == [f"{prefix}_1"]

        newest_first = genai_datasets.search_datasets(experiment_ids=[experiment_id])
        assert [d.dataset_id for d in newest_first][:3] == [d.dataset_id for d in reversed(made)]

        page = client.search_datasets(experiment_ids=[experiment_id], max_results=2)
        assert len(page) == 2 and page.token
        rest = client.search_datasets(
            experiment_ids=[experiment_id], max_results=2, page_token=page.token
        )
        assert {d.dataset_id for d in page} | {d.dataset_id for d in rest} == {
            d.dataset_id for d in made
        }

        with pytest.raises(MlflowException, match="Invalid attribute key"):
            genai_datasets.search_datasets(filter_string="colour = 'red'")
    finally:
        for item in made:
            genai_datasets.delete_dataset(dataset_id=item.dataset_id)


def test_experiment_links_and_delete(client, dataset, experiment_id, unique):
    other = client.create_experiment(unique("other"))
    client.add_dataset_to_experiments(dataset.dataset_id, [other])
    assert sorted(genai_datasets.get_dataset(dataset_id=dataset.dataset_id).experiment_ids) == sorted(
        [experiment_id, other]
    )
    with pytest.raises(MlflowException, match="No Experiment with id=987654321"):
        client.add_dataset_to_experiments(dataset.dataset_id, ["987654321"])
    client.remove_dataset_from_experiments(dataset.dataset_id, [experiment_id])
    assert genai_datasets.get_dataset(dataset_id=dataset.dataset_id).experiment_ids == [other]
    found = genai_datasets.search_datasets(experiment_ids=[other])
    assert [d.dataset_id for d in found] == [dataset.dataset_id]


def test_missing_dataset(server):
    with pytest.raises(MlflowException) as raised:
        genai_datasets.get_dataset(dataset_id="d-" + "0" * 32)
    assert raised.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    reply = requests.get(f"{server.url}/api/3.0/mlflow/datasets/d-{'0' * 32}", timeout=10)
    assert reply.status_code == 404
    assert reply.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # Deleting one that does not exist is not an error.
    genai_datasets.delete_dataset(dataset_id="d-" + "0" * 32)


def test_rest_errors_and_get_search(server, dataset, experiment_id):
    base = f"{server.url}/api/3.0/mlflow/datasets"
    reply = requests.post(f"{base}/create", json={"experiment_ids": [experiment_id]}, timeout=10)
    assert reply.status_code == 400
    assert reply.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Missing value for required parameter 'name'" in reply.json()["message"]

    missing = "d-" + "1" * 32
    reply = requests.patch(f"{base}/{missing}/tags", json={"tags": '{"a": "b"}'}, timeout=10)
    assert reply.status_code == 404
    assert reply.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    reply = requests.post(
        f"{base}/{missing}/add-experiments", json={"experiment_ids": [experiment_id]}, timeout=10
    )
    assert reply.status_code == 404
    # A missing dataset has no records and no experiments.
    reply = requests.get(f"{base}/{missing}/records", timeout=10)
    assert reply.status_code == 200 and json.loads(reply.json()["records"]) == []
    reply = requests.get(f"{base}/{missing}/experiment-ids", timeout=10)
    assert reply.status_code == 200 and reply.json().get("experiment_ids", []) == []

    reply = requests.post(
        f"{base}/search", json={"filter_string": "created_time LIKE '1%'"}, timeout=10
    )
    assert reply.status_code == 400
    assert reply.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    reply = requests.get(
        f"{base}/search",
        params={"experiment_ids": [experiment_id], "filter_string": f"name = '{dataset.name}'"},
        timeout=10,
    )
    assert reply.status_code == 200
    assert [item["dataset_id"] for item in reply.json()["datasets"]] == [dataset.dataset_id]
    assert json.loads(reply.json()["datasets"][0]["tags"]) == {"team": "qa", "mlflow.user": "ann"}
