"""Metrics, params and tags through the official client (incl. log_batch and metric history)."""

import math
import sys
import time

import mlflow
import pytest
import requests
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

FLOAT_MAX = sys.float_info.max


@pytest.fixture
def run_id(client, experiment_id):
    return client.create_run(experiment_id).info.run_id


def history(client, run_id, key):
    return [(m.value, m.step, m.timestamp) for m in client.get_metric_history(run_id, key)]


# ----------------------------------------------------------------------------------- metrics


def test_log_metric_steps_and_timestamps(client, run_id):
    client.log_metric(run_id, "loss", 1.0, timestamp=1_000, step=0)
    client.log_metric(run_id, "loss", 0.5, timestamp=2_000, step=1)
    client.log_metric(run_id, "loss", 0.25, timestamp=3_000, step=2)
    assert history(client, run_id, "loss") == [(1.0, 0, 1_000), (0.5, 1, 2_000), (0.25, 2, 3_000)]
    hist = client.get_metric_history(run_id, "loss")
    assert all(m.key == "loss" for m in hist)
    assert client.get_run(run_id).data.metrics == {"loss": 0.25}


def test_metric_history_order_is_timestamp_step_value(client, run_id):
    # logged out of order; history comes back sorted by (timestamp, step, value)
    client.log_metric(run_id, "m", 3.0, timestamp=300, step=1)
    client.log_metric(run_id, "m", 1.0, timestamp=100, step=5)
    client.log_metric(run_id, "m", 2.5, timestamp=200, step=2)
    client.log_metric(run_id, "m", 2.0, timestamp=200, step=2)
    client.log_metric(run_id, "m", 9.0, timestamp=200, step=1)
    assert history(client, run_id, "m") == [
        (1.0, 5, 100),
        (9.0, 1, 200),
        (2.0, 2, 200),
        (2.5, 2, 200),
        (3.0, 1, 300),
    ]


def ntile_sample(points, buckets):
    """MLflow 3.17's sample by brute force: NTILE(buckets) over the points ordered by (step, timestamp,
    value), the first of each bucket, and the last point in place of the last bucket's."""
    if len(points) <= buckets:
        return list(points)
    size, longer = divmod(len(points), buckets)
    kept, start = [], 0
    for bucket in range(buckets):
        kept.append(points[start])
        start += size + 1 if bucket < longer else size
    if kept[-1] != points[-1]:
        kept[-1] = points[-1]
    return kept


def test_history_bulk_interval_samples_like_ntile(server, client, run_id):
    # What the UI's charts ask for: every point at step 0 (log_metric without a step), groups of points a
    # step logged with backwards timestamps, and one point a step; sampled whole and within a step range.
    shapes = {
        "flat": [(0, 9_000 - i, float(i)) for i in range(120)],
        "groups": [(i // 7, 10_000 - i, float(i % 5)) for i in range(350)],
        "unique": [(i, 5_000 + i, float(i % 13)) for i in range(500)],
    }
    for key, points in shapes.items():
        client.log_batch(run_id, metrics=[Metric(key, v, ts, step) for step, ts, v in points])
        points.sort()
        for steps in (None, (3, 40)):
            in_range = [p for p in points if steps is None or steps[0] <= p[0] <= steps[1]]
            for buckets in (1, 2, 7, 50, 400):
                query = {"run_ids": run_id, "metric_key": key, "max_results": buckets}
                if steps:
                    query.update(start_step=steps[0], end_step=steps[1])
                reply = requests.get(
                    f"{server.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                    params=query, timeout=30)
                assert reply.status_code == 200, reply.text
                got = [(m["step"], m["timestamp"], m["value"]) for m in reply.json().get("metrics", [])]
                assert got == ntile_sample(in_range, buckets), (key, steps, buckets)


def test_latest_metric_is_max_step_then_timestamp(client, run_id):
    client.log_metric(run_id, "acc", 0.9, timestamp=5_000, step=10)
    client.log_metric(run_id, "acc", 0.1, timestamp=9_000, step=2)  # later time, lower step
    assert client.get_run(run_id).data.metrics["acc"] == 0.9
    client.log_metric(run_id, "acc", 0.7, timestamp=6_000, step=10)  # same step, later time
    assert client.get_run(run_id).data.metrics["acc"] == 0.7
    client.log_metric(run_id, "acc", 0.3, timestamp=1_000, step=11)  # higher step wins
    assert client.get_run(run_id).data.metrics["acc"] == 0.3
    assert len(client.get_metric_history(run_id, "acc")) == 4


def test_fluent_log_metric_defaults(server, experiment_id):
    before = int(time.time() * 1000)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric("x", 42)
        mlflow.log_metric("x", 43, step=7)
    after = int(time.time() * 1000)
    client = mlflow.MlflowClient()
    hist = client.get_metric_history(run.info.run_id, "x")
    assert [(m.value, m.step) for m in hist] == [(42.0, 0), (43.0, 7)]
    for m in hist:
        assert before - 5000 <= m.timestamp <= after + 5000
    assert client.get_run(run.info.run_id).data.metrics == {"x": 43.0}


def test_nan_and_infinite_metric_values(client, run_id):
    client.log_metric(run_id, "nan", float("nan"), timestamp=1, step=0)
    client.log_metric(run_id, "pinf", float("inf"), timestamp=1, step=0)
    client.log_metric(run_id, "ninf", float("-inf"), timestamp=1, step=0)
    client.log_metric(run_id, "nan", 1.5, timestamp=2, step=1)  # history holds NaN and a number
    metrics = client.get_run(run_id).data.metrics
    assert metrics["nan"] == 1.5
    # MLflow's SQL store stores +/-inf as +/-max float
    assert metrics["pinf"] == FLOAT_MAX
    assert metrics["ninf"] == -FLOAT_MAX

    hist = client.get_metric_history(run_id, "nan")
    assert len(hist) == 2
    assert math.isnan(hist[0].value) and hist[0].step == 0
    assert hist[1].value == 1.5
    assert [m.value for m in client.get_metric_history(run_id, "pinf")] == [FLOAT_MAX]
    assert [m.value for m in client.get_metric_history(run_id, "ninf")] == [-FLOAT_MAX]


def test_nan_as_latest_value(client, run_id):
    client.log_metric(run_id, "n", float("nan"), timestamp=10, step=3)
    assert math.isnan(client.get_run(run_id).data.metrics["n"])


def test_float_precision_roundtrip(client, run_id):
    values = {
        "tenth_sum": 0.1 + 0.2,
        "tiny": 5e-324,
        "small": 1.2345678901234567e-300,
        "big": 1.7976931348623157e308,
        "negzero": -0.0,
        "neg": -123456789.98765432,
        "int_like": 3.0,
        "pi": math.pi,
    }
    for i, (k, v) in enumerate(values.items()):
        client.log_metric(run_id, k, v, timestamp=1000 + i, step=i)
    got = client.get_run(run_id).data.metrics
    for k, v in values.items():
        assert got[k] == v, k
        assert client.get_metric_history(run_id, k)[0].value == v


def test_large_steps_and_timestamps(client, run_id):
    big_ts = 4_102_444_800_000  # year 2100 in ms
    big_step = 2**53 + 1  # beyond float precision: must travel as an exact integer
    client.log_metric(run_id, "s", 1.0, timestamp=big_ts, step=big_step)
    client.log_metric(run_id, "s", 2.0, timestamp=0, step=-5)
    assert history(client, run_id, "s") == [(2.0, -5, 0), (1.0, big_step, big_ts)]


def test_log_metrics_dict(server, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metrics({"a": 1.0, "b": 2.5, "c": -3}, step=4)
        mlflow.log_metrics({"a": 1.5}, step=5)
    client = mlflow.MlflowClient()
    assert client.get_run(run.info.run_id).data.metrics == {"a": 1.5, "b": 2.5, "c": -3.0}
    assert [(m.value, m.step) for m in client.get_metric_history(run.info.run_id, "a")] == [
        (1.0, 4),
        (1.5, 5),
    ]
    assert client.get_metric_history(run.info.run_id, "missing") == []


def test_metric_key_with_slashes_and_spaces(client, run_id):
    key = "train/loss per epoch:v1.2-x_y"
    client.log_metric(run_id, key, 0.125, timestamp=1, step=1)
    assert client.get_run(run_id).data.metrics == {key: 0.125}
    assert history(client, run_id, key) == [(0.125, 1, 1)]


def test_many_metric_keys(client, run_id):
    metrics = {f"k{i:03d}": float(i) for i in range(150)}
    client.log_batch(run_id, metrics=[Metric(k, v, 1, 0) for k, v in metrics.items()])
    assert client.get_run(run_id).data.metrics == metrics


# ------------------------------------------------------------------------------------ params


def test_log_param_values_are_strings(server, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id) as run:
        assert mlflow.log_param("int", 5) == 5
        mlflow.log_param("float", 0.001)
        mlflow.log_param("bool", True)
        mlflow.log_param("none", None)
        mlflow.log_param("list", [1, 2])
        mlflow.log_param("empty", "")
        mlflow.log_param("unicode", "héllo ✓")
        mlflow.log_params({"batch": 32, "opt": "adam"})
    params = mlflow.get_run(run.info.run_id).data.params
    assert params == {
        "int": "5",
        "float": "0.001",
        "bool": "True",
        "none": "None",
        "list": "[1, 2]",
        "empty": "",
        "unicode": "héllo ✓",
        "batch": "32",
        "opt": "adam",
    }


def test_param_same_value_ok_different_value_fails(client, run_id):
    client.log_param(run_id, "lr", "0.1")
    client.log_param(run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as e:
        client.log_param(run_id, "lr", "0.2")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Changing param values is not allowed" in e.value.message
    assert client.get_run(run_id).data.params == {"lr": "0.1"}

    # same rule through log_batch
    client.log_batch(run_id, params=[Param("lr", "0.1"), Param("other", "x")])
    with pytest.raises(MlflowException) as e:
        client.log_batch(run_id, params=[Param("lr", "0.3")])
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run_id).data.params == {"lr": "0.1", "other": "x"}


def test_long_param_value_is_truncated(client, run_id):
    client.log_param(run_id, "long", "v" * 7000)
    assert client.get_run(run_id).data.params["long"] == "v" * 6000
    client.log_param(run_id, "exact", "w" * 6000)
    assert client.get_run(run_id).data.params["exact"] == "w" * 6000


# -------------------------------------------------------------------------------------- tags


def test_set_and_delete_tags(client, run_id):
    client.set_tag(run_id, "a", "1")
    client.set_tag(run_id, "b", 2)
    client.set_tag(run_id, "a", "overwritten")
    client.set_tag(run_id, "empty", "")
    tags = client.get_run(run_id).data.tags
    assert tags["a"] == "overwritten"
    assert tags["b"] == "2"
    assert tags["empty"] == ""

    client.delete_tag(run_id, "a")
    tags = client.get_run(run_id).data.tags
    assert "a" not in tags
    assert tags["b"] == "2"


def test_delete_missing_tag_fails(client, run_id):
    with pytest.raises(MlflowException) as e:
        client.delete_tag(run_id, "never-set")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_fluent_set_tags(server, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.set_tags({"x": "1", "y": 2.5})
        mlflow.set_tag("z", "3")
        mlflow.delete_tag("x")
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["y"] == "2.5"
    assert tags["z"] == "3"
    assert "x" not in tags


def test_long_tag_value_is_truncated(client, run_id):
    client.set_tag(run_id, "long", "t" * 9000)
    assert client.get_run(run_id).data.tags["long"] == "t" * 8000


# --------------------------------------------------------------------------------- log_batch


def test_log_batch_everything(client, run_id):
    client.log_batch(
        run_id,
        metrics=[
            Metric("m1", 1.0, 100, 0),
            Metric("m1", 2.0, 200, 1),
            Metric("m2", -1.0, 100, 0),
        ],
        params=[Param("p1", "a"), Param("p2", "b")],
        tags=[RunTag("t1", "x"), RunTag("t2", "y")],
    )
    run = client.get_run(run_id)
    assert run.data.metrics == {"m1": 2.0, "m2": -1.0}
    assert run.data.params == {"p1": "a", "p2": "b"}
    assert run.data.tags["t1"] == "x" and run.data.tags["t2"] == "y"
    assert history(client, run_id, "m1") == [(1.0, 0, 100), (2.0, 1, 200)]


def test_log_batch_client_chunks_large_batches(client, run_id):
    # The client splits into requests of <= 1000 metrics / 100 params; the server stores all.
    metrics = [Metric("big", float(i), 10_000 + i, i) for i in range(2500)]
    params = [Param(f"p{i}", str(i)) for i in range(250)]
    client.log_batch(run_id, metrics=metrics, params=params)
    hist = client.get_metric_history(run_id, "big")
    assert len(hist) == 2500
    assert [m.step for m in hist] == list(range(2500))
    run = client.get_run(run_id)
    assert run.data.metrics["big"] == 2499.0
    assert len(run.data.params) == 250
    assert run.data.params["p249"] == "249"


def test_log_batch_empty_is_noop(client, run_id):
    client.log_batch(run_id, metrics=[], params=[], tags=[])
    assert client.get_run(run_id).data.params == {}


def test_log_batch_invalid_metric_key_rejected_atomically(client, run_id):
    with pytest.raises(MlflowException) as e:
        client.log_batch(
            run_id,
            metrics=[Metric("ok", 1.0, 1, 0), Metric("bad!key", 1.0, 1, 0)],
            params=[Param("pp", "1")],
        )
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    run = client.get_run(run_id)
    assert run.data.metrics == {}
    assert run.data.params == {}


def test_async_logging(server, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id) as run:
        ops = [mlflow.log_metric("async", float(i), step=i, synchronous=False) for i in range(20)]
        ops.append(mlflow.log_param("ap", "1", synchronous=False))
        ops.append(mlflow.set_tag("at", "2", synchronous=False))
        for op in ops:
            op.wait()
    client = mlflow.MlflowClient()
    run = client.get_run(run.info.run_id)
    assert run.data.metrics == {"async": 19.0}
    assert run.data.params == {"ap": "1"}
    assert run.data.tags["at"] == "2"
    hist = client.get_metric_history(run.info.run_id, "async")
    assert sorted(m.step for m in hist) == list(range(20))
