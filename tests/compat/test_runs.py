"""Runs through the official client: lifecycle, names, nesting, status, delete/restore."""

import re
import time

import mlflow
import pytest
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException

RANDOM_NAME = re.compile(r"^[a-z]+-[a-z]+-\d{1,3}$")


def now_ms():
    return int(time.time() * 1000)


def test_start_and_end_run(server, experiment_id):
    before = now_ms()
    with mlflow.start_run(experiment_id=experiment_id, run_name="first") as active:
        run_id = active.info.run_id
        assert re.fullmatch(r"[0-9a-f]{32}", run_id)
        assert active.info.status == "RUNNING"
        assert active.info.run_name == "first"
        assert mlflow.active_run().info.run_id == run_id
        fetched = mlflow.get_run(run_id)
        assert fetched.info.status == "RUNNING"
        assert fetched.info.end_time is None
    assert mlflow.active_run() is None

    run = mlflow.get_run(run_id)
    info = run.info
    assert info.run_id == run_id
    assert info.experiment_id == experiment_id
    assert info.run_name == "first"
    assert info.status == "FINISHED"
    assert info.lifecycle_stage == "active"
    assert before - 5000 <= info.start_time <= info.end_time <= now_ms() + 5000
    assert info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"
    assert info.user_id  # client sends the local user
    tags = run.data.tags
    assert tags["mlflow.runName"] == "first"
    assert tags["mlflow.user"] == info.user_id
    assert tags["mlflow.source.type"] == "LOCAL"
    assert "mlflow.source.name" in tags


def test_run_without_name_gets_random_name(server, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id) as run:
        pass
    fetched = mlflow.get_run(run.info.run_id)
    assert RANDOM_NAME.match(fetched.info.run_name), fetched.info.run_name
    assert fetched.data.tags["mlflow.runName"] == fetched.info.run_name


def test_run_name_from_tag(server, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id, tags={"mlflow.runName": "from-tag"}) as run:
        pass
    fetched = mlflow.get_run(run.info.run_id)
    assert fetched.info.run_name == "from-tag"
    assert fetched.data.tags["mlflow.runName"] == "from-tag"


def test_client_create_run_with_name_and_tags(client, experiment_id):
    run = client.create_run(
        experiment_id, run_name="client-run", tags={"k": "v"}, start_time=1_700_000_000_000
    )
    assert run.info.run_name == "client-run"
    assert run.info.start_time == 1_700_000_000_000
    assert run.info.status == "RUNNING"
    assert run.data.tags["k"] == "v"
    assert run.data.tags["mlflow.runName"] == "client-run"
    assert run.data.params == {}
    assert run.data.metrics == {}
    fetched = client.get_run(run.info.run_id)
    assert fetched.info.start_time == 1_700_000_000_000
    assert fetched.data.tags == run.data.tags


def test_set_tag_mlflow_runname_renames(client, experiment_id):
    run = client.create_run(experiment_id, run_name="before")
    client.set_tag(run.info.run_id, "mlflow.runName", "after")
    fetched = client.get_run(run.info.run_id)
    assert fetched.info.run_name == "after"
    assert fetched.data.tags["mlflow.runName"] == "after"


def test_update_run_name_and_status(client, experiment_id):
    run = client.create_run(experiment_id, run_name="orig")
    client.update_run(run.info.run_id, status="KILLED", name="renamed")
    fetched = client.get_run(run.info.run_id)
    assert fetched.info.status == "KILLED"
    assert fetched.info.run_name == "renamed"
    assert fetched.data.tags["mlflow.runName"] == "renamed"

    # name only: status unchanged
    client.update_run(run.info.run_id, name="again")
    fetched = client.get_run(run.info.run_id)
    assert fetched.info.run_name == "again"
    assert fetched.info.status == "KILLED"


def test_set_terminated(client, experiment_id):
    run = client.create_run(experiment_id)
    client.set_terminated(run.info.run_id, status="FAILED", end_time=1_800_000_000_123)
    info = client.get_run(run.info.run_id).info
    assert info.status == "FAILED"
    assert info.end_time == 1_800_000_000_123


@pytest.mark.parametrize("status", ["FINISHED", "FAILED", "KILLED"])
def test_end_run_status(server, experiment_id, status):
    with mlflow.start_run(experiment_id=experiment_id) as run:
        pass
    mlflow.start_run(run_id=run.info.run_id)
    mlflow.end_run(status=status)
    assert mlflow.get_run(run.info.run_id).info.status == status


def test_failed_block_marks_run_failed(server, experiment_id):
    with pytest.raises(ZeroDivisionError):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            1 / 0  # noqa: B018
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"


def test_resume_run(server, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id, run_name="resumable") as run:
        mlflow.log_param("p", "1")
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"
    with mlflow.start_run(run_id=run.info.run_id) as resumed:
        assert resumed.info.run_id == run.info.run_id
        assert mlflow.get_run(run.info.run_id).info.status == "RUNNING"
        mlflow.log_param("q", "2")
    fetched = mlflow.get_run(run.info.run_id)
    assert fetched.info.status == "FINISHED"
    assert fetched.info.run_name == "resumable"
    assert fetched.data.params == {"p": "1", "q": "2"}


def test_nested_runs(server, experiment_id):
    # Nested runs without experiment_id go to the *current* experiment, so set it.
    mlflow.set_experiment(experiment_id=experiment_id)
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child-1", nested=True) as child1:
            with mlflow.start_run(run_name="grandchild", nested=True) as grandchild:
                pass
        with mlflow.start_run(run_name="child-2", nested=True) as child2:
            pass
        assert mlflow.active_run().info.run_id == parent.info.run_id

    get = mlflow.get_run
    assert "mlflow.parentRunId" not in get(parent.info.run_id).data.tags
    assert get(child1.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert get(child2.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert get(grandchild.info.run_id).data.tags["mlflow.parentRunId"] == child1.info.run_id
    assert get(grandchild.info.run_id).info.experiment_id == experiment_id

    children = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        order_by=["attributes.run_name ASC"],
        output_format="list",
    )
    assert [r.info.run_name for r in children] == ["child-1", "child-2"]


def test_start_run_without_nested_fails_when_active(server, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id):
        with pytest.raises(Exception, match="already active"):
            mlflow.start_run(experiment_id=experiment_id)


def test_delete_and_restore_run(client, experiment_id):
    run = client.create_run(experiment_id, run_name="to-delete")
    run_id = run.info.run_id
    client.delete_run(run_id)
    fetched = client.get_run(run_id)
    assert fetched.info.lifecycle_stage == "deleted"
    assert fetched.info.run_name == "to-delete"
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"

    mlflow.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"


def test_get_run_roundtrips_all_fields(client, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id, run_name="full") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_metric("loss", 0.5, step=3)
        mlflow.set_tag("stage", "dev")
    fetched = client.get_run(run.info.run_id)
    assert fetched.data.params == {"lr": "0.01"}
    assert fetched.data.metrics == {"loss": 0.5}
    assert fetched.data.tags["stage"] == "dev"
    assert fetched.info.to_proto().run_uuid == run.info.run_id
    assert fetched.inputs.dataset_inputs == []


def test_run_status_enum_values(client, experiment_id):
    run = client.create_run(experiment_id)
    for status in ("SCHEDULED", "RUNNING", "FINISHED", "FAILED", "KILLED"):
        client.update_run(run.info.run_id, status=status)
        assert client.get_run(run.info.run_id).info.status == status
    assert RunStatus.is_terminated(RunStatus.from_string("KILLED"))


def test_create_run_in_deleted_experiment_fails(client, unique):
    exp_id = client.create_experiment(unique("deleted-exp"))
    client.delete_experiment(exp_id)
    with pytest.raises(MlflowException) as e:
        client.create_run(exp_id)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_runs_in_default_experiment(client, server):
    run = client.create_run("0", run_name="in-default")
    assert run.info.experiment_id == "0"
    assert run.info.artifact_uri.endswith(f"/0/{run.info.run_id}/artifacts")
    client.delete_run(run.info.run_id)


def test_finished_run_still_accepts_writes(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.set_terminated(run_id, "FINISHED")
    client.log_metric(run_id, "late", 1.0, timestamp=1, step=0)
    client.log_param(run_id, "late_p", "x")
    client.set_tag(run_id, "late_t", "y")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"late": 1.0}
    assert run.data.params == {"late_p": "x"}
    assert run.data.tags["late_t"] == "y"
