"""`ferroflow gc` (MLflow's `mlflow gc`) against data the official mlflow client made through a running
ferroflow: a run deleted with the client is gone for good after gc (get_run answers 404) with its
artifacts, a deleted experiment goes with its runs, `--trace-older-than` deletes old traces, and run
artifacts on S3 (moto, as in test_s3.py) are deleted through the proxied destination and a cloud default
root, and left alone elsewhere.

This exercises ferroflow's own command line, so it runs against ferroflow only (on each backend); the
mlflow server kind is skipped. Every gc call is scoped with ids, so the session's other data is safe.
"""

from __future__ import annotations

import os
import subprocess
import time

os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")

import mlflow  # noqa: E402
import pytest  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

import compat_servers as cs  # noqa: E402
from test_s3 import BUCKET, keys, moto, server_s3_env, start_ferroflow  # noqa: E402,F401

DAY_NS = 86_400 * 10**9


pytestmark = pytest.mark.skipif(
    "ferroflow" not in cs.requested_servers(),
    reason="`ferroflow gc` is ferroflow's command line (COMPAT_SERVERS leaves ferroflow out)",
)


@pytest.fixture(autouse=True)
def _ferroflow_only(request):
    if "server" in request.fixturenames and request.getfixturevalue("server").kind != "ferroflow":
        pytest.skip("`ferroflow gc` is ferroflow's command line")


def gc(server, *arguments: str, destination: str | None = None,
       env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for name in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_ARTIFACTS_DESTINATION",
                 "MLFLOW_DEFAULT_ARTIFACT_ROOT", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    env.update(env_extra or {})
    # Scope every call: without ids gc would take every deleted run, model and experiment of the
    # session's database.
    scoped = list(arguments)
    for flag in ("--run-ids", "--logged-model-ids", "--experiment-ids"):
        if flag not in scoped:
            scoped += [flag, ""]
    return subprocess.run(
        [str(cs.ferroflow_bin()), "gc", "--backend-store-uri", server.backend_uri,
         "--artifacts-destination", destination or str(server.artifacts), *scoped],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )


def logged_run(experiment_id: str, name: str) -> str:
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
        mlflow.log_param("lr", "0.1")
        mlflow.log_metric("loss", 0.5, step=1)
        mlflow.set_tag("team", "gc")
        mlflow.log_text(f"notes of {name}", "notes/a.txt")
    return run.info.run_id


def assert_not_found(call):
    with pytest.raises(MlflowException) as error:
        call()
    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert error.value.get_http_status_code() == 404


def test_gc_removes_a_deleted_run_for_good(server, client, unique):
    experiment_id = client.create_experiment(unique("gc"))
    gone = logged_run(experiment_id, "gone")
    kept = logged_run(experiment_id, "kept")
    gone_folder = server.artifacts / experiment_id / gone
    assert (gone_folder / "artifacts" / "notes" / "a.txt").read_text() == "notes of gone"
    client.delete_run(gone)

    # A run that is not deleted is refused and left alone; the deleted one still goes.
    result = gc(server, "--run-ids", f"{kept},{gone}")
    assert result.returncode != 0
    assert (f"Run {kept} is not in `deleted` lifecycle stage. Only runs in `deleted` lifecycle "
            "stage can be deleted.") in result.stderr
    assert f"Run with ID {gone} has been permanently deleted." in result.stdout
    assert "runs: 1 deleted" in result.stdout

    assert_not_found(lambda: client.get_run(gone))
    assert not gone_folder.exists()
    assert gone not in {run.info.run_id for run in client.search_runs(
        [experiment_id], run_view_type=mlflow.entities.ViewType.ALL)}
    with pytest.raises(MlflowException):
        client.restore_run(gone)

    run = client.get_run(kept)
    assert run.info.lifecycle_stage == "active"
    assert run.data.params == {"lr": "0.1"}
    assert run.data.metrics == {"loss": 0.5}
    assert run.data.tags["team"] == "gc"
    assert [f.path for f in client.list_artifacts(kept)] == ["notes"]
    assert (server.artifacts / experiment_id / kept / "artifacts" / "notes" / "a.txt").exists()

    # Nothing more to do for that id.
    again = gc(server, "--run-ids", gone)
    assert again.returncode != 0
    assert f"Run '{gone}' not found" in again.stderr


def test_gc_removes_a_deleted_logged_model_for_good(server, client, unique, tmp_path):
    experiment_id = client.create_experiment(unique("gc-models"))
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 100)
    models = {}
    for name in ("gone", "kept"):
        model = client.create_logged_model(experiment_id, name=name, params={"depth": "3"})
        client.log_model_artifact(model.model_id, str(weights))
        models[name] = model
    gone_folder = server.artifacts / experiment_id / "models" / models["gone"].model_id
    assert (gone_folder / "artifacts" / "weights.bin").stat().st_size == 100
    client.delete_logged_model(models["gone"].model_id)

    result = gc(server, "--logged-model-ids", models["gone"].model_id)
    assert result.returncode == 0, result.stderr
    assert (f"Logged model with ID {models['gone'].model_id} has been permanently deleted."
            in result.stdout)
    assert_not_found(lambda: client.get_logged_model(models["gone"].model_id))
    assert not gone_folder.exists()
    kept = client.get_logged_model(models["kept"].model_id)
    assert kept.params == {"depth": "3"}
    assert [f.path for f in client.list_logged_model_artifacts(kept.model_id)] == ["weights.bin"]


def test_gc_deletes_a_deleted_experiment_and_old_traces(server, client, unique):
    gone_name = unique("gc-gone")
    gone_experiment = client.create_experiment(gone_name)
    kept_experiment = client.create_experiment(unique("gc-kept"))
    run_in_gone = logged_run(gone_experiment, "in-gone")
    client.set_experiment_tag(gone_experiment, "stage", "old")

    now_ns = time.time_ns()
    old = mlflow.start_span_no_context("old", experiment_id=kept_experiment,
                                       start_time_ns=now_ns - 3 * DAY_NS)
    old.end(end_time_ns=now_ns - 3 * DAY_NS + 10**6)
    recent = mlflow.start_span_no_context("recent", experiment_id=kept_experiment)
    recent.end()
    in_gone = mlflow.start_span_no_context("in-gone", experiment_id=gone_experiment)
    in_gone.end()
    mlflow.flush_trace_async_logging(terminate=False)
    assert len(client.search_traces(locations=[kept_experiment])) == 2

    client.delete_experiment(gone_experiment)
    result = gc(server, "--run-ids", run_in_gone, "--experiment-ids", gone_experiment,
                "--trace-older-than", "1d", "--trace-experiment-ids", kept_experiment)
    assert result.returncode == 0, result.stderr
    assert f"Experiment with ID {gone_experiment} has been permanently deleted." in result.stdout
    assert "experiments: 1 deleted" in result.stdout
    assert "traces: 1 deleted in 1 experiments" in result.stdout

    assert_not_found(lambda: client.get_experiment(gone_experiment))
    assert_not_found(lambda: client.get_run(run_in_gone))
    assert_not_found(lambda: client.get_trace(in_gone.trace_id))
    assert not (server.artifacts / gone_experiment / run_in_gone).exists()
    # The name is free again.
    assert client.get_experiment_by_name(gone_name) is None
    assert client.create_experiment(gone_name) != gone_experiment

    left = client.search_traces(locations=[kept_experiment])
    assert [trace.info.trace_id for trace in left] == [recent.trace_id]
    assert client.get_experiment(kept_experiment).lifecycle_stage == "active"


def test_gc_deletes_run_artifacts_on_s3(tmp_path_factory, moto):
    server = start_ferroflow(tmp_path_factory, moto, "gc-s3",
                             ["--artifacts-destination", f"s3://{BUCKET}/gc-proxied"])
    try:
        client = mlflow.MlflowClient(server.url)
        proxied = client.create_experiment("gc-proxied")
        # Experiments whose artifacts the client writes straight to S3 (boto3 on moto).
        direct = client.create_experiment(
            "gc-direct", artifact_location=f"s3://{BUCKET}/gc-direct/exp")
        elsewhere = client.create_experiment(
            "gc-elsewhere", artifact_location=f"s3://{BUCKET}/gc-elsewhere/exp")
        runs = {}
        for name, experiment_id in [("proxied-gone", proxied), ("proxied-kept", proxied),
                                    ("direct-gone", direct), ("elsewhere-gone", elsewhere)]:
            run = client.create_run(experiment_id, run_name=name)
            client.log_text(run.info.run_id, f"text of {name}", "notes/a.txt")
            client.set_terminated(run.info.run_id)
            runs[name] = run.info.run_id
        prefixes = {
            "proxied-gone": f"gc-proxied/{proxied}/{runs['proxied-gone']}/",
            "proxied-kept": f"gc-proxied/{proxied}/{runs['proxied-kept']}/",
            "direct-gone": f"gc-direct/exp/{runs['direct-gone']}/",
            "elsewhere-gone": f"gc-elsewhere/exp/{runs['elsewhere-gone']}/",
        }
        for name, prefix in prefixes.items():
            assert keys(prefix) == {f"{prefix}artifacts/notes/a.txt": len(f"text of {name}")}
        gone = [runs["proxied-gone"], runs["direct-gone"], runs["elsewhere-gone"]]
        for run_id in gone:
            client.delete_run(run_id)

        result = gc(server, "--run-ids", ",".join(gone),
                    "--default-artifact-root", f"s3://{BUCKET}/gc-direct",
                    destination=f"s3://{BUCKET}/gc-proxied", env_extra=server_s3_env(moto))
        assert result.returncode == 0, result.stderr
        assert "runs: 3 deleted" in result.stdout
        assert ("artifacts: 2 folders deleted, 0 had none, 1 left outside the artifact roots"
                in result.stdout)
        assert f"warning: run {runs['elsewhere-gone']}" in result.stderr
        assert keys(prefixes["proxied-gone"]) == {}
        assert keys(prefixes["direct-gone"]) == {}
        # Outside both roots: left in place; another run's artifacts: untouched.
        assert len(keys(prefixes["elsewhere-gone"])) == 1
        assert len(keys(prefixes["proxied-kept"])) == 1
        for run_id in gone:
            assert_not_found(lambda run_id=run_id: client.get_run(run_id))
        assert client.get_run(runs["proxied-kept"]).info.lifecycle_stage == "active"
    finally:
        server.stop()
