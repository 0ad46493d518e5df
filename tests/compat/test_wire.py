"""Raw-HTTP checks of wire details that the client hides (JSON shapes, statuses, encodings)."""

import base64
import json
import math

import pytest
import requests

API = "/api/2.0/mlflow"


def get(server, path, **params):
    return requests.get(f"{server.url}{path}", params=params, timeout=30)


def post(server, path, body):
    return requests.post(f"{server.url}{path}", json=body, timeout=30)


def assert_error(resp, status, code):
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_health(server):
    r = get(server, "/health")
    assert r.status_code == 200
    assert r.text == "OK"


def test_version(server):
    r = get(server, "/version")
    assert r.status_code == 200
    assert r.text == "3.17.2"


def test_server_info(server):
    r = get(server, "/api/3.0/mlflow/server-info")
    assert r.status_code == 200
    info = r.json()
    assert info["store_type"] == "SqlStore"
    assert info["workspaces_enabled"] is False
    assert info["multipart_uploads_enabled"] is False


def test_error_json_shape(server):
    r = get(server, f"{API}/runs/get", run_id="0" * 32)
    body = assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    assert "0" * 32 in body["message"]
    r = get(server, f"{API}/experiments/get", experiment_id="424242")
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_missing_required_parameter(server):
    r = get(server, f"{API}/runs/get")
    body = assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert "run_id" in body["message"]
    r = post(server, f"{API}/experiments/create", {})
    body = assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert "name" in body["message"]
    r = post(server, f"{API}/experiments/create", {"name": ""})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_duplicate_experiment_is_400(server, unique):
    name = unique("wire-dup")
    assert post(server, f"{API}/experiments/create", {"name": name}).status_code == 200
    r = post(server, f"{API}/experiments/create", {"name": name})
    assert_error(r, 400, "RESOURCE_ALREADY_EXISTS")


def test_content_type_must_be_json(server, unique):
    r = requests.post(
        f"{server.url}{API}/experiments/create",
        data=json.dumps({"name": unique("ct")}),
        headers={"Content-Type": "text/plain"},
        timeout=30,
    )
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_empty_results_are_empty_objects(server, experiment_id):
    r = post(server, f"{API}/runs/search",
             {"experiment_ids": [experiment_id], "filter": "tags.x = 'nope'"})
    assert r.status_code == 200
    assert r.json() == {}
    r = post(server, f"{API}/experiments/search",
             {"max_results": 10, "filter": "name = 'no-such-experiment-xyz'"})
    assert r.json() == {}
    r = get(server, f"{API}/metrics/get-history", run_id="0" * 32, metric_key="m")
    assert r.status_code == 200
    assert r.json() == {}


def test_void_rpcs_return_empty_object(server, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    for path, body in (
        ("runs/log-parameter", {"run_id": run_id, "key": "p", "value": "v"}),
        ("runs/set-tag", {"run_id": run_id, "key": "t", "value": "v"}),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": 1.5, "timestamp": 10}),
        ("runs/log-batch", {"run_id": run_id}),
        ("runs/delete-tag", {"run_id": run_id, "key": "t"}),
        ("experiments/set-experiment-tag", {"experiment_id": experiment_id, "key": "k",
                                            "value": "v"}),
    ):
        r = post(server, f"{API}/{path}", body)
        assert r.status_code == 200, (path, r.text)
        assert r.json() == {}, path


def test_run_json_shape(server, client, experiment_id):
    r = post(server, f"{API}/runs/create",
             {"experiment_id": experiment_id, "start_time": 1234, "run_name": "shape"})
    assert r.status_code == 200, r.text
    run = r.json()["run"]
    info = run["info"]
    run_id = info["run_id"]
    assert info["run_uuid"] == run_id
    assert info["experiment_id"] == experiment_id
    assert info["run_name"] == "shape"
    assert info["status"] == "RUNNING"
    assert info["start_time"] == 1234 and isinstance(info["start_time"], int)
    assert "end_time" not in info  # unset fields are omitted
    assert info["lifecycle_stage"] == "active"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"
    assert run["data"] == {"tags": [{"key": "mlflow.runName", "value": "shape"}]}

    post(server, f"{API}/runs/log-metric",
         {"run_id": run_id, "key": "m", "value": 0.5, "timestamp": 99, "step": 3})
    got = get(server, f"{API}/runs/get", run_id=run_id).json()["run"]
    assert got["data"]["metrics"] == [{"key": "m", "value": 0.5, "timestamp": 99, "step": 3}]
    assert "params" not in got["data"]  # empty lists are omitted


def test_experiment_json_shape(server, client, unique):
    name = unique("shape")
    exp_id = post(server, f"{API}/experiments/create", {"name": name}).json()["experiment_id"]
    assert isinstance(exp_id, str) and exp_id.isdigit()
    exp = get(server, f"{API}/experiments/get", experiment_id=exp_id).json()["experiment"]
    assert exp["experiment_id"] == exp_id
    assert exp["name"] == name
    assert exp["lifecycle_stage"] == "active"
    assert exp["artifact_location"] == f"mlflow-artifacts:/{exp_id}"
    assert isinstance(exp["creation_time"], int)
    assert exp["last_update_time"] == exp["creation_time"]
    assert "tags" not in exp

    by_name = get(server, f"{API}/experiments/get-by-name", experiment_name=name).json()
    assert by_name["experiment"] == exp


def test_int64_accepted_as_string(server, client, experiment_id):
    r = post(server, f"{API}/runs/create", {"experiment_id": experiment_id, "start_time": "4567"})
    assert r.status_code == 200, r.text
    assert r.json()["run"]["info"]["start_time"] == 4567
    run_id = r.json()["run"]["info"]["run_id"]
    r = post(server, f"{API}/runs/log-metric",
             {"run_id": run_id, "key": "m", "value": 1, "timestamp": "77", "step": "2"})
    assert r.status_code == 200, r.text
    (m,) = client.get_metric_history(run_id, "m")
    assert (m.value, m.timestamp, m.step) == (1.0, 77, 2)


def test_nan_on_the_wire(server, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    r = post(server, f"{API}/runs/log-metric",
             {"run_id": run_id, "key": "n", "value": "NaN", "timestamp": 1})
    assert r.status_code == 200, r.text
    r = get(server, f"{API}/runs/get", run_id=run_id)
    # MLflow encodes NaN as the JSON string "NaN"
    assert '"NaN"' in r.text
    (m,) = r.json()["run"]["data"]["metrics"]
    assert m["value"] == "NaN"
    assert math.isnan(client.get_run(run_id).data.metrics["n"])


def test_log_metric_requires_timestamp(server, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    r = post(server, f"{API}/runs/log-metric", {"run_id": run_id, "key": "m", "value": 1})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_log_batch_limits(server, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    metrics = [{"key": "x", "value": 1.0, "timestamp": 1, "step": i} for i in range(1001)]
    r = post(server, f"{API}/runs/log-batch", {"run_id": run_id, "metrics": metrics})
    body = assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert "1000" in body["message"]

    params = [{"key": f"p{i}", "value": "1"} for i in range(101)]
    r = post(server, f"{API}/runs/log-batch", {"run_id": run_id, "params": params})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")

    tags = [{"key": f"t{i}", "value": "1"} for i in range(101)]
    r = post(server, f"{API}/runs/log-batch", {"run_id": run_id, "tags": tags})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")

    dup = [{"key": "d", "value": "1"}, {"key": "d", "value": "2"}]
    r = post(server, f"{API}/runs/log-batch", {"run_id": run_id, "params": dup})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")

    # at most 1000 entities in total
    r = post(server, f"{API}/runs/log-batch",
             {"run_id": run_id, "metrics": metrics[:901], "params": params[:100]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert client.get_run(run_id).data.params == {}

    # exactly at the limits is fine
    ok = post(server, f"{API}/runs/log-batch",
              {"run_id": run_id, "metrics": metrics[:900], "params": params[:100]})
    assert ok.status_code == 200, ok.text
    ok = post(server, f"{API}/runs/log-batch",
              {"run_id": run_id, "metrics": metrics[900:1000], "tags": tags[:100]})
    assert ok.status_code == 200, ok.text
    run = client.get_run(run_id)
    assert len(run.data.params) == 100
    assert run.data.tags["t99"] == "1"
    assert len(client.get_metric_history(run_id, "x")) == 1000


def test_metric_history_paging(server, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    for i in range(5):
        client.log_metric(run_id, "h", float(i), timestamp=100 + i, step=i)
    seen, token = [], None
    for _ in range(10):
        params = {"run_id": run_id, "metric_key": "h", "max_results": 2}
        if token:
            params["page_token"] = token
        body = get(server, f"{API}/metrics/get-history", **params).json()
        seen += [m["step"] for m in body["metrics"]]
        token = body.get("next_page_token")
        if not token:
            break
    assert seen == [0, 1, 2, 3, 4]


def test_experiments_search_paging_tokens(server, unique):
    prefix = unique("wirepage")
    for i in range(3):
        post(server, f"{API}/experiments/create", {"name": f"{prefix}-{i}"})
    flt = f"name LIKE '{prefix}%'"
    body = post(server, f"{API}/experiments/search",
                {"max_results": 2, "filter": flt, "order_by": ["name ASC"]}).json()
    assert [e["name"] for e in body["experiments"]] == [f"{prefix}-0", f"{prefix}-1"]
    token = body["next_page_token"]
    assert isinstance(token, str) and token
    body = post(server, f"{API}/experiments/search",
                {"max_results": 2, "filter": flt, "order_by": ["name ASC"],
                 "page_token": token}).json()
    assert [e["name"] for e in body["experiments"]] == [f"{prefix}-2"]
    assert "next_page_token" not in body

    # the GET form with query parameters works too
    r = get(server, f"{API}/experiments/search", max_results=5, filter=flt,
            order_by="name DESC")
    assert [e["name"] for e in r.json()["experiments"]] == [
        f"{prefix}-2", f"{prefix}-1", f"{prefix}-0"
    ]


def test_experiments_search_requires_max_results(server):
    r = post(server, f"{API}/experiments/search", {})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_invalid_page_token_is_400(server, experiment_id):
    r = post(server, f"{API}/runs/search",
             {"experiment_ids": [experiment_id], "page_token": "garbage!"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    not_json = base64.b64encode(b"not json").decode()
    r = post(server, f"{API}/runs/search",
             {"experiment_ids": [experiment_id], "page_token": not_json})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_ajax_api_prefix(server):
    r = get(server, "/ajax-api/2.0/mlflow/experiments/get", experiment_id="0")
    assert r.status_code == 200
    assert r.json()["experiment"]["name"] == "Default"


def test_unknown_route_is_404(server):
    r = get(server, f"{API}/no-such-endpoint")
    assert r.status_code == 404


@pytest.mark.parametrize("view_type", ["ACTIVE_ONLY", "DELETED_ONLY", "ALL", "1", "3"])
def test_enums_by_name_or_number(server, view_type):
    r = post(server, f"{API}/experiments/search",
             {"max_results": 1, "view_type": int(view_type) if view_type.isdigit() else view_type})
    assert r.status_code == 200, r.text


def test_run_name_and_tag_must_agree(server, experiment_id):
    r = post(server, f"{API}/runs/create", {
        "experiment_id": experiment_id, "run_name": "a",
        "tags": [{"key": "mlflow.runName", "value": "b"}],
    })
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = post(server, f"{API}/runs/create", {
        "experiment_id": experiment_id, "run_name": "same",
        "tags": [{"key": "mlflow.runName", "value": "same"}],
    })
    assert r.status_code == 200, r.text
    assert r.json()["run"]["info"]["run_name"] == "same"


def test_update_run_returns_run_info(server, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    r = post(server, f"{API}/runs/update",
             {"run_id": run_id, "status": "FINISHED", "end_time": 5555, "run_name": "upd"})
    assert r.status_code == 200, r.text
    info = r.json()["run_info"]
    assert info["run_id"] == run_id
    assert info["status"] == "FINISHED"
    assert info["end_time"] == 5555
    assert info["run_name"] == "upd"
