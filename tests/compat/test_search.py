"""search_runs through the official client: filters, ordering, paging, view types."""

import uuid

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

BASE = 1_700_000_000_000


def make_runs(client, experiment_id):
    """Four runs with distinct params/metrics/tags and start times BASE+1000 .. BASE+4000.

    alpha: model=cnn lr=0.1  acc=0.9 loss=0.3 team=red            FINISHED
    beta:  model=rnn lr=0.01 acc=0.7 loss=0.5 team=blue extra=yes  FINISHED
    gamma: model=CNN-big     acc=0.5                               FAILED
    delta: (nothing)                                               RUNNING
    """
    spec = {
        "alpha": ({"model": "cnn", "lr": "0.1"}, {"acc": 0.9, "loss": 0.3}, {"team": "red"},
                  "FINISHED"),
        "beta": ({"model": "rnn", "lr": "0.01"}, {"acc": 0.7, "loss": 0.5},
                 {"team": "blue", "extra": "yes"}, "FINISHED"),
        "gamma": ({"model": "CNN-big"}, {"acc": 0.5}, {}, "FAILED"),
        "delta": ({}, {}, {}, None),
    }
    ids = {}
    for i, (name, (params, metrics, tags, status)) in enumerate(spec.items()):
        start = BASE + 1000 * (i + 1)
        run = client.create_run(experiment_id, run_name=name, start_time=start)
        rid = run.info.run_id
        client.log_batch(
            rid,
            metrics=[Metric(k, v, start, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if status:
            client.set_terminated(rid, status=status, end_time=start + 500)
        ids[name] = rid
    return experiment_id, ids


@pytest.fixture(scope="module")
def runs(server):
    """The four runs, shared by the read-only tests of this module (per server)."""
    client = mlflow.MlflowClient(server.url)
    exp_id = client.create_experiment(f"search-{uuid.uuid4().hex[:12]}")
    return make_runs(client, exp_id)


@pytest.fixture
def fresh_runs(client, experiment_id):
    """The four runs in a new experiment, for tests that modify them."""
    return make_runs(client, experiment_id)


def search(client, exp_id, filter_string="", order_by=None, **kw):
    res = client.search_runs([exp_id], filter_string=filter_string, order_by=order_by, **kw)
    return [r.info.run_name for r in res]


def names_set(client, exp_id, filter_string):
    return set(search(client, exp_id, filter_string))


# ------------------------------------------------------------------------------------ filters


@pytest.mark.parametrize(
    "flt,expected",
    [
        ("metrics.acc > 0.6", {"alpha", "beta"}),
        ("metrics.acc >= 0.7", {"alpha", "beta"}),
        ("metrics.acc < 0.7", {"gamma"}),
        ("metrics.acc <= 0.7", {"beta", "gamma"}),
        ("metrics.acc = 0.7", {"beta"}),
        ("metrics.acc != 0.7", {"alpha", "gamma"}),
        ("metrics.loss < 0.4", {"alpha"}),
        ("metric.acc > 0.6 AND metrics.loss > 0.4", {"beta"}),
        ("metrics.missing > 0", set()),
    ],
)
def test_filter_metrics(client, runs, flt, expected):
    exp_id, _ = runs
    assert names_set(client, exp_id, flt) == expected


@pytest.mark.parametrize(
    "flt,expected",
    [
        ("params.model = 'cnn'", {"alpha"}),
        ("params.model != 'cnn'", {"beta", "gamma"}),
        ("params.model LIKE 'c%'", {"alpha"}),
        ("params.model LIKE '%n%'", {"alpha", "beta"}),
        ("params.model ILIKE 'c%'", {"alpha", "gamma"}),
        ("params.model ILIKE '%BIG'", {"gamma"}),
        ("params.lr = '0.01'", {"beta"}),
        ("params.lr IS NULL", {"gamma", "delta"}),
        ("params.lr IS NOT NULL", {"alpha", "beta"}),
        ("param.model = \"rnn\"", {"beta"}),
        ("parameters.model = 'rnn'", {"beta"}),
    ],
)
def test_filter_params(client, runs, flt, expected):
    exp_id, _ = runs
    assert names_set(client, exp_id, flt) == expected


@pytest.mark.parametrize(
    "flt,expected",
    [
        ("tags.team = 'red'", {"alpha"}),
        ("tags.team != 'red'", {"beta"}),
        ("tags.team LIKE 'b%'", {"beta"}),
        ("tags.team ILIKE 'RED'", {"alpha"}),
        ("tags.team IS NULL", {"gamma", "delta"}),
        ("tags.extra IS NOT NULL", {"beta"}),
        ("tag.extra = 'yes'", {"beta"}),
        ("tags.`mlflow.runName` = 'gamma'", {"gamma"}),
        ("tags.\"mlflow.runName\" LIKE '%lta'", {"delta"}),
    ],
)
def test_filter_tags(client, runs, flt, expected):
    exp_id, _ = runs
    assert names_set(client, exp_id, flt) == expected


@pytest.mark.parametrize(
    "flt,expected",
    [
        ("attributes.status = 'FAILED'", {"gamma"}),
        ("attributes.status != 'FINISHED'", {"gamma", "delta"}),
        ("status = 'RUNNING'", {"delta"}),
        ("attributes.run_name = 'beta'", {"beta"}),
        ("run_name LIKE 'g%'", {"gamma"}),
        ("attributes.run_name ILIKE 'AL%'", {"alpha"}),
        ("attributes.`run name` = 'alpha'", {"alpha"}),
        (f"attributes.start_time > {BASE + 2500}", {"gamma", "delta"}),
        (f"attributes.start_time = {BASE + 1000}", {"alpha"}),
        (f"attributes.start_time <= {BASE + 2000}", {"alpha", "beta"}),
        (f"attributes.created >= {BASE + 4000}", {"delta"}),
        (f"attributes.end_time < {BASE + 2000}", {"alpha"}),
        (f"attributes.status = 'FINISHED' AND attributes.start_time > {BASE + 1500}", {"beta"}),
    ],
)
def test_filter_attributes(client, runs, flt, expected):
    exp_id, _ = runs
    assert names_set(client, exp_id, flt) == expected


def test_filter_run_id_in(client, runs):
    exp_id, ids = runs
    flt = f"attributes.run_id IN ('{ids['alpha']}', '{ids['gamma']}')"
    assert names_set(client, exp_id, flt) == {"alpha", "gamma"}
    flt = f"attributes.run_id NOT IN ('{ids['alpha']}', '{ids['gamma']}')"
    assert names_set(client, exp_id, flt) == {"beta", "delta"}
    flt = f"attributes.run_id = '{ids['beta']}'"
    assert names_set(client, exp_id, flt) == {"beta"}


def test_filter_user_id_and_artifact_uri(client, runs):
    exp_id, ids = runs
    run = client.get_run(ids["alpha"])
    assert run.info.user_id
    flt = f"attributes.user_id = '{run.info.user_id}'"
    assert names_set(client, exp_id, flt) == {"alpha", "beta", "gamma", "delta"}
    flt = f"attributes.artifact_uri LIKE '%{ids['alpha']}%'"
    assert names_set(client, exp_id, flt) == {"alpha"}


def test_filter_combined_across_kinds(client, runs):
    exp_id, _ = runs
    flt = "metrics.acc > 0.4 AND params.model ILIKE 'c%' AND attributes.status = 'FINISHED'"
    assert search(client, exp_id, flt) == ["alpha"]
    flt = "metrics.acc > 0.4 and tags.team = 'blue'"  # lower-case AND
    assert search(client, exp_id, flt) == ["beta"]


# ----------------------------------------------------------------------------------- ordering


def test_default_order_is_start_time_desc(client, runs):
    exp_id, _ = runs
    assert search(client, exp_id) == ["delta", "gamma", "beta", "alpha"]


@pytest.mark.parametrize(
    "order_by,expected",
    [
        (["metrics.acc DESC"], ["alpha", "beta", "gamma", "delta"]),
        (["metrics.acc ASC"], ["gamma", "beta", "alpha", "delta"]),
        (["metrics.acc"], ["gamma", "beta", "alpha", "delta"]),
        (["metrics.loss DESC"], ["beta", "alpha", "delta", "gamma"]),
        (["params.model ASC"], ["gamma", "alpha", "beta", "delta"]),
        (["params.model DESC"], ["beta", "alpha", "gamma", "delta"]),
        (["tags.team ASC"], ["beta", "alpha", "delta", "gamma"]),
        (["attributes.start_time ASC"], ["alpha", "beta", "gamma", "delta"]),
        (["attributes.start_time DESC"], ["delta", "gamma", "beta", "alpha"]),
        (["attributes.run_name DESC"], ["gamma", "delta", "beta", "alpha"]),
        (["run_name"], ["alpha", "beta", "delta", "gamma"]),
        (["attributes.status ASC", "attributes.run_name DESC"],
         ["gamma", "beta", "alpha", "delta"]),
        (["attributes.end_time DESC"], ["gamma", "beta", "alpha", "delta"]),
    ],
)
def test_order_by(client, runs, order_by, expected):
    exp_id, _ = runs
    assert search(client, exp_id, order_by=order_by) == expected


# ------------------------------------------------------------------------------------- paging


def test_paging_with_page_tokens(client, runs):
    exp_id, _ = runs
    order = ["attributes.start_time ASC"]
    page1 = client.search_runs([exp_id], order_by=order, max_results=3)
    assert [r.info.run_name for r in page1] == ["alpha", "beta", "gamma"]
    assert page1.token
    page2 = client.search_runs([exp_id], order_by=order, max_results=3, page_token=page1.token)
    assert [r.info.run_name for r in page2] == ["delta"]
    assert not page2.token

    seen, token = [], None
    while True:
        page = client.search_runs([exp_id], order_by=order, max_results=1, page_token=token)
        seen += [r.info.run_name for r in page]
        token = page.token
        if not token:
            break
    assert seen == ["alpha", "beta", "gamma", "delta"]

    exact = client.search_runs([exp_id], max_results=4)
    assert len(exact) == 4
    assert not exact.token


def test_paging_with_filter(client, runs):
    exp_id, _ = runs
    page1 = client.search_runs(
        [exp_id], "metrics.acc > 0", order_by=["metrics.acc DESC"], max_results=2
    )
    assert [r.info.run_name for r in page1] == ["alpha", "beta"]
    page2 = client.search_runs(
        [exp_id], "metrics.acc > 0", order_by=["metrics.acc DESC"], max_results=2,
        page_token=page1.token,
    )
    assert [r.info.run_name for r in page2] == ["gamma"]
    assert not page2.token


# --------------------------------------------------------------------------------- view types


def test_run_view_type(client, fresh_runs):
    exp_id, ids = fresh_runs
    client.delete_run(ids["beta"])
    assert names_set(client, exp_id, "") == {"alpha", "gamma", "delta"}
    deleted = client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_name for r in deleted] == ["beta"]
    assert deleted[0].info.lifecycle_stage == "deleted"
    every = client.search_runs([exp_id], run_view_type=ViewType.ALL)
    assert {r.info.run_name for r in every} == {"alpha", "beta", "gamma", "delta"}


# -------------------------------------------------------------------------- returned content


def test_search_returns_full_runs(client, runs):
    exp_id, ids = runs
    (beta,) = client.search_runs([exp_id], "attributes.run_name = 'beta'")
    assert beta.info.run_id == ids["beta"]
    assert beta.info.status == "FINISHED"
    assert beta.info.start_time == BASE + 2000
    assert beta.info.end_time == BASE + 2500
    assert beta.data.params == {"model": "rnn", "lr": "0.01"}
    assert beta.data.metrics == {"acc": 0.7, "loss": 0.5}
    assert beta.data.tags["team"] == "blue"
    assert beta.data.tags["extra"] == "yes"
    assert beta.data.tags["mlflow.runName"] == "beta"
    assert beta.to_dictionary() == client.get_run(ids["beta"]).to_dictionary()


def test_search_multiple_experiments(client, unique):
    e1 = client.create_experiment(unique("multi"))
    e2 = client.create_experiment(unique("multi"))
    client.create_run(e1, run_name="in-e1", start_time=BASE)
    client.create_run(e2, run_name="in-e2", start_time=BASE + 1)
    res = client.search_runs([e1, e2], order_by=["attributes.start_time"])
    assert [(r.info.run_name, r.info.experiment_id) for r in res] == [("in-e1", e1), ("in-e2", e2)]


def test_fluent_search_runs_dataframe(server, runs):
    exp_id, ids = runs
    df = mlflow.search_runs(
        experiment_ids=[exp_id], filter_string="metrics.acc > 0", order_by=["metrics.acc DESC"]
    )
    assert list(df["run_id"]) == [ids["alpha"], ids["beta"], ids["gamma"]]
    assert list(df["metrics.acc"]) == [0.9, 0.7, 0.5]
    assert list(df["params.model"]) == ["cnn", "rnn", "CNN-big"]
    assert list(df["status"]) == ["FINISHED", "FINISHED", "FAILED"]
    assert list(df["tags.mlflow.runName"]) == ["alpha", "beta", "gamma"]


def test_fluent_search_runs_by_experiment_name(server, client, unique):
    name = unique("by-name")
    exp_id = client.create_experiment(name)
    client.create_run(exp_id, run_name="only")
    res = mlflow.search_runs(experiment_names=[name], output_format="list")
    assert [r.info.run_name for r in res] == ["only"]


def test_search_empty_experiment(client, experiment_id):
    res = client.search_runs([experiment_id])
    assert list(res) == []
    assert not res.token


def test_invalid_filters_rejected(client, runs):
    exp_id, _ = runs
    for bad in (
        "metrics.acc >> 1",
        "foo.bar = 1",
        "attributes.nonexistent = 'x'",
        "metrics.acc IS NULL",
        "params.model = cnn",
        "metrics.acc > 'abc'",
        "params.model = 'a' OR params.model = 'b'",
        "params.model IN ('cnn', 'rnn')",  # IN is only for run_id / datasets
    ):
        with pytest.raises(MlflowException) as e:
            client.search_runs([exp_id], bad)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE", bad


def test_invalid_order_by_rejected(client, runs):
    exp_id, _ = runs
    for bad in (["foo.bar"], ["metrics.acc SIDEWAYS"], ["attributes.nonexistent"]):
        with pytest.raises(MlflowException) as e:
            client.search_runs([exp_id], order_by=bad)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE", bad
