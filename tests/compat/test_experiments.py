"""Experiments through the official client: CRUD, tags, lifecycle, search, paging."""

import time

import mlflow
import pytest
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException


def now_ms():
    return int(time.time() * 1000)


def test_default_experiment_exists(client):
    exp = client.get_experiment("0")
    assert exp.experiment_id == "0"
    assert exp.name == "Default"
    assert exp.lifecycle_stage == "active"
    assert client.get_experiment_by_name("Default").experiment_id == "0"


def test_set_experiment_creates_then_reuses(server, unique):
    name = unique("set-exp")
    before = now_ms()
    exp = mlflow.set_experiment(name)
    assert exp.name == name
    assert exp.experiment_id.isdigit() and exp.experiment_id != "0"
    assert exp.lifecycle_stage == "active"
    assert exp.artifact_location == f"mlflow-artifacts:/{exp.experiment_id}"
    assert before - 5000 <= exp.creation_time <= now_ms() + 5000
    assert exp.last_update_time == exp.creation_time
    assert exp.tags == {}

    again = mlflow.set_experiment(name)
    assert again.experiment_id == exp.experiment_id
    assert again.creation_time == exp.creation_time

    by_id = mlflow.set_experiment(experiment_id=exp.experiment_id)
    assert by_id.name == name

    with mlflow.start_run() as run:
        assert run.info.experiment_id == exp.experiment_id


def test_create_get_experiment_with_tags(client, unique):
    name = unique("create")
    exp_id = client.create_experiment(name, tags={"team": "ml", "empty": "", "k.with.dots": "v"})
    exp = client.get_experiment(exp_id)
    assert exp.experiment_id == exp_id
    assert exp.name == name
    assert exp.tags == {"team": "ml", "empty": "", "k.with.dots": "v"}
    assert exp.artifact_location == f"mlflow-artifacts:/{exp_id}"

    by_name = client.get_experiment_by_name(name)
    assert by_name.experiment_id == exp_id
    assert by_name.tags == exp.tags
    assert by_name.creation_time == exp.creation_time


def test_experiment_ids_increase(client, unique):
    a = int(client.create_experiment(unique("seq")))
    b = int(client.create_experiment(unique("seq")))
    assert b > a


def test_get_experiment_by_name_missing_is_none(client, unique):
    assert client.get_experiment_by_name(unique("nope")) is None
    assert mlflow.get_experiment_by_name(unique("nope")) is None


def test_rename_experiment(client, unique):
    old, new = unique("old"), unique("new")
    exp_id = client.create_experiment(old)
    created = client.get_experiment(exp_id)
    time.sleep(0.01)
    client.rename_experiment(exp_id, new)
    exp = client.get_experiment(exp_id)
    assert exp.name == new
    assert exp.last_update_time >= created.last_update_time
    assert client.get_experiment_by_name(old) is None
    assert client.get_experiment_by_name(new).experiment_id == exp_id


def test_delete_and_restore_experiment(client, unique):
    name = unique("del")
    exp_id = client.create_experiment(name)
    run = client.create_run(exp_id)

    client.delete_experiment(exp_id)
    exp = client.get_experiment(exp_id)
    assert exp.lifecycle_stage == "deleted"
    # get-by-name still finds deleted experiments
    assert client.get_experiment_by_name(name).lifecycle_stage == "deleted"
    # deleting an experiment deletes its runs
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"

    # set_experiment refuses a deleted experiment
    with pytest.raises(MlflowException, match="deleted"):
        mlflow.set_experiment(name)

    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"
    assert mlflow.set_experiment(name).experiment_id == exp_id


def test_duplicate_name_of_deleted_experiment(client, unique):
    name = unique("dup-del")
    exp_id = client.create_experiment(name)
    client.delete_experiment(exp_id)
    with pytest.raises(MlflowException) as e:
        client.create_experiment(name)
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_experiment_tags_set_overwrite_delete(client, unique):
    exp_id = client.create_experiment(unique("tags"), tags={"a": "1"})
    client.set_experiment_tag(exp_id, "b", "2")
    client.set_experiment_tag(exp_id, "a", "overwritten")
    assert client.get_experiment(exp_id).tags == {"a": "overwritten", "b": "2"}

    client.delete_experiment_tag(exp_id, "a")
    assert client.get_experiment(exp_id).tags == {"b": "2"}

    mlflow.set_experiment(experiment_id=exp_id)
    mlflow.set_experiment_tags({"c": "3", "d": "4"})
    mlflow.set_experiment_tag("b", "22")
    assert client.get_experiment(exp_id).tags == {"b": "22", "c": "3", "d": "4"}


def test_experiment_tag_long_value(client, unique):
    exp_id = client.create_experiment(unique("longtag"))
    value = "x" * 5000
    client.set_experiment_tag(exp_id, "long", value)
    assert client.get_experiment(exp_id).tags["long"] == value


def test_experiment_unicode_name_and_tags(client, unique):
    name = unique("ünïcödé ✓ exp")
    exp_id = client.create_experiment(name, tags={"note": "日本語 — \"quoted\" 'single'"})
    exp = client.get_experiment_by_name(name)
    assert exp.experiment_id == exp_id
    assert exp.name == name
    assert exp.tags["note"] == "日本語 — \"quoted\" 'single'"


# --------------------------------------------------------------------------------------- search


@pytest.fixture
def three_experiments(client, unique):
    prefix = unique("search")
    ids = {}
    for suffix, team in (("a", "red"), ("b", "blue"), ("c", "red")):
        ids[suffix] = client.create_experiment(f"{prefix}-{suffix}", tags={"team": team})
    client.set_experiment_tag(ids["b"], "only_b", "yes")
    return prefix, ids


def names(exps):
    return [e.name for e in exps]


def test_search_experiments_name_like_and_order(client, three_experiments):
    prefix, ids = three_experiments
    exps = client.search_experiments(filter_string=f"name LIKE '{prefix}%'", order_by=["name ASC"])
    assert names(exps) == [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    assert [e.experiment_id for e in exps] == [ids["a"], ids["b"], ids["c"]]

    exps = client.search_experiments(filter_string=f"name LIKE '{prefix}%'", order_by=["name DESC"])
    assert names(exps) == [f"{prefix}-c", f"{prefix}-b", f"{prefix}-a"]

    # experiment_id ordering is numeric (ids are increasing)
    exps = client.search_experiments(
        filter_string=f"name LIKE '{prefix}%'", order_by=["experiment_id DESC"]
    )
    assert [e.experiment_id for e in exps] == [ids["c"], ids["b"], ids["a"]]


def test_search_experiments_default_order_is_newest_first(client, three_experiments):
    prefix, ids = three_experiments
    exps = client.search_experiments(filter_string=f"name LIKE '{prefix}%'")
    # creation_time DESC; ties (same millisecond) broken by experiment_id
    times = [e.creation_time for e in exps]
    assert times == sorted(times, reverse=True)
    assert set(names(exps)) == {f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"}


def test_search_experiments_name_filters(client, three_experiments):
    prefix, ids = three_experiments
    exps = client.search_experiments(filter_string=f"name = '{prefix}-b'")
    assert names(exps) == [f"{prefix}-b"]
    exps = client.search_experiments(
        filter_string=f"name LIKE '{prefix}%' AND name != '{prefix}-b'", order_by=["name"]
    )
    assert names(exps) == [f"{prefix}-a", f"{prefix}-c"]
    exps = client.search_experiments(
        filter_string=f"name ILIKE '{prefix.upper()}-%'", order_by=["name"]
    )
    assert names(exps) == [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    # LIKE is case-sensitive
    assert client.search_experiments(filter_string=f"name LIKE '{prefix.upper()}-%'") == []


def test_search_experiments_tag_filters(client, three_experiments):
    prefix, ids = three_experiments
    base = f"name LIKE '{prefix}%'"
    exps = client.search_experiments(
        filter_string=f"{base} AND tags.team = 'red'", order_by=["name"]
    )
    assert names(exps) == [f"{prefix}-a", f"{prefix}-c"]
    exps = client.search_experiments(filter_string=f"{base} AND tags.team != 'red'")
    assert names(exps) == [f"{prefix}-b"]
    exps = client.search_experiments(filter_string=f"{base} AND tags.team LIKE 'bl%'")
    assert names(exps) == [f"{prefix}-b"]
    exps = client.search_experiments(
        filter_string=f"{base} AND tags.`only_b` = 'yes'", order_by=["name"]
    )
    assert names(exps) == [f"{prefix}-b"]
    exps = client.search_experiments(filter_string=f"{base} AND tags.team ILIKE 'RED'",
                                     order_by=["name"])
    assert names(exps) == [f"{prefix}-a", f"{prefix}-c"]


def test_search_experiments_creation_time_filter(client, three_experiments):
    prefix, ids = three_experiments
    first = client.get_experiment(ids["a"])
    exps = client.search_experiments(
        filter_string=f"name LIKE '{prefix}%' AND creation_time >= {first.creation_time}"
    )
    assert len(exps) == 3
    exps = client.search_experiments(
        filter_string=f"name LIKE '{prefix}%' AND creation_time < {first.creation_time}"
    )
    assert exps == []


def test_search_experiments_paging(client, three_experiments):
    prefix, ids = three_experiments
    f = f"name LIKE '{prefix}%'"
    page1 = client.search_experiments(filter_string=f, max_results=2, order_by=["name"])
    assert names(page1) == [f"{prefix}-a", f"{prefix}-b"]
    assert page1.token
    page2 = client.search_experiments(
        filter_string=f, max_results=2, order_by=["name"], page_token=page1.token
    )
    assert names(page2) == [f"{prefix}-c"]
    assert not page2.token

    # exact fit: no token after the last page
    exact = client.search_experiments(filter_string=f, max_results=3, order_by=["name"])
    assert len(exact) == 3
    assert not exact.token

    # fluent search_experiments pages internally and returns everything
    assert sorted(names(mlflow.search_experiments(filter_string=f))) == [
        f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"
    ]


def test_search_experiments_view_type(client, three_experiments):
    prefix, ids = three_experiments
    client.delete_experiment(ids["b"])
    f = f"name LIKE '{prefix}%'"
    active = client.search_experiments(filter_string=f, order_by=["name"])
    assert names(active) == [f"{prefix}-a", f"{prefix}-c"]
    deleted = client.search_experiments(
        filter_string=f, view_type=ViewType.DELETED_ONLY, order_by=["name"]
    )
    assert names(deleted) == [f"{prefix}-b"]
    assert deleted[0].lifecycle_stage == "deleted"
    every = client.search_experiments(filter_string=f, view_type=ViewType.ALL, order_by=["name"])
    assert names(every) == [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]


def test_search_experiments_returns_tags(client, three_experiments):
    prefix, ids = three_experiments
    (b,) = client.search_experiments(filter_string=f"name = '{prefix}-b'")
    assert b.tags == {"team": "blue", "only_b": "yes"}
    assert b.experiment_id == ids["b"]
    assert b.artifact_location == f"mlflow-artifacts:/{ids['b']}"


def test_search_experiments_no_match_is_empty(client, unique):
    res = client.search_experiments(filter_string=f"name = '{unique('none')}'")
    assert list(res) == []
    assert not res.token
