"""Error behaviour as seen by the official client: error codes, HTTP statuses, messages."""

import mlflow
import pytest
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException, RestException

MISSING_RUN = "0123456789abcdef0123456789abcdef"


def raises_code(code, fn, *args, **kwargs):
    with pytest.raises(MlflowException) as e:
        fn(*args, **kwargs)
    assert e.value.error_code == code, f"{e.value.error_code}: {e.value.message}"
    return e.value


def test_get_missing_run(client):
    err = raises_code("RESOURCE_DOES_NOT_EXIST", client.get_run, MISSING_RUN)
    assert isinstance(err, RestException)
    assert err.get_http_status_code() == 404
    assert MISSING_RUN in err.message


def test_get_missing_experiment(client):
    err = raises_code("RESOURCE_DOES_NOT_EXIST", client.get_experiment, "987654321")
    assert err.get_http_status_code() == 404
    assert "987654321" in err.message


def test_missing_entities_for_other_calls(client):
    raises_code("RESOURCE_DOES_NOT_EXIST", client.log_metric, MISSING_RUN, "m", 1.0)
    raises_code("RESOURCE_DOES_NOT_EXIST", client.set_tag, MISSING_RUN, "t", "v")
    raises_code("RESOURCE_DOES_NOT_EXIST", client.delete_run, MISSING_RUN)
    # metric history of an unknown run is simply empty in MLflow
    assert client.get_metric_history(MISSING_RUN, "m") == []
    raises_code("RESOURCE_DOES_NOT_EXIST", client.delete_experiment, "987654321")
    raises_code("RESOURCE_DOES_NOT_EXIST", client.rename_experiment, "987654321", "zzz")
    raises_code("RESOURCE_DOES_NOT_EXIST", client.create_run, "987654321")


def test_duplicate_experiment_name(client, unique):
    name = unique("dup")
    client.create_experiment(name)
    err = raises_code("RESOURCE_ALREADY_EXISTS", client.create_experiment, name)
    assert err.get_http_status_code() == 400
    assert name in err.message


def test_rename_to_existing_name(client, unique):
    a, b = unique("ra"), unique("rb")
    client.create_experiment(a)
    b_id = client.create_experiment(b)
    with pytest.raises(MlflowException) as e:
        client.rename_experiment(b_id, a)
    # MLflow leaks a DB IntegrityError as BAD_REQUEST here; RESOURCE_ALREADY_EXISTS would be the
    # clean answer. Both are HTTP 400, which is what clients can rely on.
    assert e.value.error_code in ("BAD_REQUEST", "RESOURCE_ALREADY_EXISTS")
    assert e.value.get_http_status_code() == 400
    assert client.get_experiment(b_id).name == b


def test_logging_to_deleted_run(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.delete_run(run_id)
    for fn, args in (
        (client.log_metric, (run_id, "m", 1.0)),
        (client.log_param, (run_id, "p", "1")),
        (client.set_tag, (run_id, "t", "v")),
        (client.log_batch, (run_id, [Metric("m", 1.0, 1, 0)])),
        (client.update_run, (run_id, "FINISHED")),
    ):
        err = raises_code("INVALID_PARAMETER_VALUE", fn, *args)
        assert "must be in the 'active' state" in err.message
    assert client.get_run(run_id).data.metrics == {}


def test_fluent_logging_to_deleted_run(server, experiment_id):
    run = mlflow.start_run(experiment_id=experiment_id)
    mlflow.MlflowClient().delete_run(run.info.run_id)
    with pytest.raises(MlflowException) as e:
        mlflow.log_metric("m", 1.0)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as e:
        mlflow.end_run()  # updating a deleted run fails too
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_experiment_writes_on_deleted_experiment(client, unique):
    exp_id = client.create_experiment(unique("gone"))
    client.delete_experiment(exp_id)
    raises_code("INVALID_PARAMETER_VALUE", client.set_experiment_tag, exp_id, "k", "v")


def test_invalid_search_filter(client, experiment_id):
    err = raises_code("INVALID_PARAMETER_VALUE", client.search_runs, [experiment_id],
                      "metrics.acc >> 1")
    assert err.get_http_status_code() == 400
    raises_code("INVALID_PARAMETER_VALUE", client.search_experiments,
                filter_string="name = 'a' OR name = 'b'")
    raises_code("INVALID_PARAMETER_VALUE", client.search_experiments,
                filter_string="nonexistent_attr = 'x'")


def test_invalid_page_token(client, experiment_id):
    raises_code("INVALID_PARAMETER_VALUE", client.search_runs, [experiment_id],
                page_token="not-a-token")
    raises_code("INVALID_PARAMETER_VALUE", client.search_experiments, page_token="not-a-token")


@pytest.mark.parametrize(
    "key",
    ["k" * 251, "bad!key", "../escape", "/abs", "a/../b", "tab\tkey", "semi;colon"],
)
def test_invalid_param_and_metric_keys(client, experiment_id, key):
    run_id = client.create_run(experiment_id).info.run_id
    raises_code("INVALID_PARAMETER_VALUE", client.log_param, run_id, key, "v")
    raises_code("INVALID_PARAMETER_VALUE", client.log_metric, run_id, key, 1.0)
    raises_code("INVALID_PARAMETER_VALUE", client.log_batch, run_id, params=[Param(key, "v")])
    run = client.get_run(run_id)
    assert run.data.params == {} and run.data.metrics == {}


def test_key_of_250_chars_is_fine(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    key = "k" * 250
    client.log_param(run_id, key, "v")
    client.log_metric(run_id, key, 2.0)
    client.set_tag(run_id, key, "t")
    run = client.get_run(run_id)
    assert run.data.params == {key: "v"}
    assert run.data.metrics == {key: 2.0}
    assert run.data.tags[key] == "t"


def test_over_long_experiment_tag_value(client, unique):
    exp_id = client.create_experiment(unique("exptag"))
    raises_code("INVALID_PARAMETER_VALUE", client.set_experiment_tag, exp_id, "k", "v" * 20001)
    raises_code("INVALID_PARAMETER_VALUE", client.set_experiment_tag, exp_id, "k" * 251, "v")


def test_invalid_run_status_and_ids(client, experiment_id):
    with pytest.raises(Exception):
        client.update_run(client.create_run(experiment_id).info.run_id, status="BOGUS")
    # malformed run ids are rejected (client- or server-side) without a 5xx
    raises_code("INVALID_PARAMETER_VALUE", client.get_run, "bad id with spaces")


def test_max_results_upper_bounds(client, experiment_id):
    err = raises_code("INVALID_PARAMETER_VALUE", client.search_runs, [experiment_id],
                      max_results=50001)
    assert "max_results" in err.message
    raises_code("INVALID_PARAMETER_VALUE", client.search_experiments, max_results=50001)
    # the limits themselves are fine
    assert list(client.search_runs([experiment_id], max_results=50000)) == []
