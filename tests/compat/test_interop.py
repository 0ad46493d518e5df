"""Database interop: one server writes a database + artifact dir, the other reads it back, on every
backend of COMPAT_BACKENDS (SQLite, PostgreSQL, MySQL/MariaDB).

(a) `mlflow server` creates and fills a fresh DB, is stopped, ferroflow starts on the same DB and
    artifact dir and must return identical JSON for everything; then it writes more.
(b) the reverse: ferroflow creates and fills, `mlflow server` reads (and writes more).

And the schema ferroflow creates on PostgreSQL and MySQL is the one `mlflow db upgrade` creates: their
`pg_dump --schema-only` / `mariadb-dump --no-data` are the same.

Not parametrized over COMPAT_SERVERS' fixture: it needs both servers. It is skipped (loudly) when
COMPAT_SERVERS does not name both, or when either executable is missing; an unreachable database server
is skipped too, unless CI=true.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

import compat_servers as cs

API = "/api/2.0/mlflow"
pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

BINARY = bytes(range(256)) * 40 + b"\x00end"
ARTIFACTS = {
    "top.txt": b"top level artifact\n",
    "data/blob.bin": BINARY,
    "data/nested/deeper/notes.md": "# ünïcode ✓\n".encode(),
    "data/empty.txt": b"",
}


def require_backend(backend: str):
    if backend not in cs.requested_backends():
        pytest.skip(f"INTEROP NOT RUN on {backend}: COMPAT_BACKENDS leaves it out")
    problem = cs.backend_problem(backend)
    if problem:
        if cs.in_ci():
            pytest.fail(f"backend {backend} unavailable under CI=true: {problem}")
        pytest.skip(f"INTEROP NOT RUN on {backend}: {problem}")


def require_both():
    wanted = cs.requested_servers()
    missing = [k for k in ("ferroflow", "mlflow") if k not in wanted]
    if missing:
        pytest.skip(f"INTEROP NOT RUN: COMPAT_SERVERS={','.join(wanted)} lacks {missing}")
    for kind in ("ferroflow", "mlflow"):
        problem = cs.binary_problem(kind)
        if problem:
            pytest.skip(f"INTEROP NOT RUN: {kind} unavailable: {problem}")


# ------------------------------------------------------------------------------------ filling


def fill(url: str, tag: str, src_dir: Path) -> dict:
    """Write a representative data set through the official client. Returns the ids."""
    mlflow.set_tracking_uri(url)
    client = MlflowClient(url)
    exp_name = f"interop-{tag}"
    exp_id = client.create_experiment(exp_name, tags={"team": "ml", "note": "ünïcode ✓"})
    client.set_experiment_tag(exp_id, "later", "added")
    renamed_id = client.create_experiment(f"interop-{tag}-old")
    client.rename_experiment(renamed_id, f"interop-{tag}-renamed")
    deleted_id = client.create_experiment(f"interop-{tag}-deleted")
    client.delete_experiment(deleted_id)

    for rel, data in ARTIFACTS.items():
        p = src_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    dataset = mlflow.data.from_pandas(df, source="s3://bucket/interop.csv", name="interop-ds")

    mlflow.set_experiment(experiment_id=exp_id)
    with mlflow.start_run(run_name="main", tags={"kind": "main"}) as main:
        mlflow.log_params({"lr": 0.01, "layers": "[64, 32]", "empty": ""})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1_000 + step)
        mlflow.log_metric("acc", 0.5, step=0, timestamp=2_000)
        mlflow.log_metric("acc", 0.75, step=1, timestamp=2_001)
        mlflow.log_metric("nan_metric", float("nan"), step=0, timestamp=3_000)
        mlflow.log_metric("inf_metric", float("inf"), step=0, timestamp=3_000)
        mlflow.log_metric("precise", 0.1 + 0.2, step=2**40, timestamp=4_102_444_800_000)
        mlflow.set_tag("stage", "dev")
        mlflow.set_tag("to_delete", "x")
        mlflow.delete_tag("to_delete")
        mlflow.log_input(dataset, context="training")
        mlflow.log_artifacts(str(src_dir))
        mlflow.log_text("via log_text", "texts/t.txt")
        with mlflow.start_run(run_name="child", nested=True):
            mlflow.log_param("child_param", "c")
            mlflow.log_metric("child_metric", 7.0, step=1, timestamp=5_000)
    with mlflow.start_run(run_name="failing"):
        mlflow.log_metric("acc", 0.1, timestamp=6_000)
    mlflow.start_run(run_name="killed")
    mlflow.end_run("KILLED")

    gone = client.create_run(exp_id, run_name="deleted-run")
    client.log_batch(gone.info.run_id, metrics=[Metric("m", 1.0, 7_000, 0)],
                     params=[Param("p", "1")], tags=[RunTag("t", "v")])
    client.delete_run(gone.info.run_id)

    default_run = client.create_run("0", run_name="in-default")
    client.log_param(default_run.info.run_id, "where", "default")

    failed = client.search_runs([exp_id], "attributes.run_name = 'failing'")[0]
    client.set_terminated(failed.info.run_id, "FAILED")
    return {
        "exp_name": exp_name,
        "exp_ids": [exp_id, renamed_id, deleted_id],
        "main_run": main.info.run_id,
        "default_run": default_run.info.run_id,
    }


# --------------------------------------------------------------------------------- snapshots


def normalize(obj):
    """Order-insensitive view of lists of {key,...} entries (tags, params, metrics)."""
    if isinstance(obj, dict):
        return {k: normalize(v) for k, v in obj.items()}
    if isinstance(obj, list):
        items = [normalize(v) for v in obj]
        if items and all(isinstance(v, dict) and "key" in v for v in items):
            return sorted(items, key=lambda v: (v["key"], repr(sorted(v.items()))))
        if items and all(isinstance(v, dict) and "dataset" in v for v in items):
            return sorted(items, key=lambda v: v["dataset"].get("name", ""))
        return items
    return obj


def jget(url, endpoint, **params):
    r = requests.get(f"{url}{endpoint}", params=params, timeout=60)
    assert r.status_code == 200, f"GET {endpoint} {params}: {r.status_code} {r.text[:500]}"
    return r.json()


def jpost(url, endpoint, body):
    r = requests.post(f"{url}{endpoint}", json=body, timeout=60)
    assert r.status_code == 200, f"POST {endpoint} {body}: {r.status_code} {r.text[:500]}"
    return r.json()


def list_tree(url, root):
    """{relative path: bytes} of every artifact under the proxied path `root`."""
    out = {}
    listing = jget(url, "/api/2.0/mlflow-artifacts/artifacts", path=root)
    for f in listing.get("files", []):
        child = f"{root}/{f['path']}"
        if f["is_dir"]:
            out.update({f"{f['path']}/{k}": v for k, v in list_tree(url, child).items()})
        else:
            r = requests.get(f"{url}/api/2.0/mlflow-artifacts/artifacts/{child}", timeout=60)
            assert r.status_code == 200, (child, r.status_code)
            out[f["path"]] = {
                "listed_file_size": f.get("file_size"),
                "bytes": len(r.content),
                "sha256": hashlib.sha256(r.content).hexdigest(),
            }
    return out


def snapshot(url: str, ids: dict) -> dict:
    snap = {}
    snap["default_experiment"] = jget(url, f"{API}/experiments/get", experiment_id="0")
    for eid in ids["exp_ids"]:
        snap[f"experiment {eid}"] = normalize(jget(url, f"{API}/experiments/get",
                                                   experiment_id=eid))
    snap["by_name"] = normalize(jget(url, f"{API}/experiments/get-by-name",
                                     experiment_name=ids["exp_name"]))
    snap["search_experiments"] = normalize(jpost(url, f"{API}/experiments/search", {
        "max_results": 100, "filter": f"name LIKE '{ids['exp_name']}%'",
        "order_by": ["name ASC"], "view_type": "ALL",
    }))
    runs = jpost(url, f"{API}/runs/search", {
        "experiment_ids": ids["exp_ids"][:1] + ["0"], "run_view_type": "ALL",
        "order_by": ["attributes.run_name ASC"], "max_results": 100,
    })
    snap["search_runs"] = normalize(runs)
    snap["search_runs_filtered"] = normalize(jpost(url, f"{API}/runs/search", {
        "experiment_ids": ids["exp_ids"][:1],
        "filter": "metrics.acc > 0.2 AND params.lr = '0.01' AND tags.stage = 'dev'",
    }))
    for run in runs["runs"]:
        rid = run["info"]["run_id"]
        full = jget(url, f"{API}/runs/get", run_id=rid)
        snap[f"run {rid}"] = normalize(full)
        for m in full["run"]["data"].get("metrics", []):
            snap[f"history {rid} {m['key']}"] = jget(
                url, f"{API}/metrics/get-history", run_id=rid, metric_key=m["key"]
            )
    main = jget(url, f"{API}/runs/get", run_id=ids["main_run"])["run"]["info"]
    root = main["artifact_uri"].removeprefix("mlflow-artifacts:/")
    snap["artifacts"] = list_tree(url, root)
    return snap


def check_written_data(url: str, ids: dict):
    """Spot checks through the client objects (independent of the other server)."""
    client = MlflowClient(url)
    exp = client.get_experiment_by_name(ids["exp_name"])
    assert exp.tags == {"team": "ml", "note": "ünïcode ✓", "later": "added"}
    main = client.get_run(ids["main_run"])
    assert main.info.run_name == "main"
    assert main.info.status == "FINISHED"
    assert main.data.params == {"lr": "0.01", "layers": "[64, 32]", "empty": ""}
    assert main.data.metrics["loss"] == 0.2
    assert main.data.metrics["acc"] == 0.75
    assert math.isnan(main.data.metrics["nan_metric"])
    assert main.data.metrics["precise"] == 0.1 + 0.2
    assert "to_delete" not in main.data.tags
    assert [(m.value, m.step, m.timestamp) for m in client.get_metric_history(main.info.run_id,
                                                                               "loss")] == [
        (1.0 / (s + 1), s, 1_000 + s) for s in range(5)
    ]
    (ds,) = main.inputs.dataset_inputs
    assert ds.dataset.name == "interop-ds"
    got = {
        p: v["sha256"] for p, v in list_tree(url, main.info.artifact_uri.removeprefix(
            "mlflow-artifacts:/")).items()
    }
    expected = dict(ARTIFACTS)
    expected["texts/t.txt"] = b"via log_text"
    assert got == {p: hashlib.sha256(data).hexdigest() for p, data in expected.items()}
    children = client.search_runs(
        [exp.experiment_id], f"tags.mlflow.parentRunId = '{main.info.run_id}'"
    )
    assert [r.info.run_name for r in children] == ["child"]


def write_more(url: str, ids: dict, tmp: Path):
    """The reading server must also be able to write into the other server's DB."""
    client = MlflowClient(url)
    new_exp = client.create_experiment(f"{ids['exp_name']}-second-writer")
    assert int(new_exp) > max(int(e) for e in ids["exp_ids"])
    run = client.create_run(ids["exp_ids"][0], run_name="second-writer")
    rid = run.info.run_id
    client.log_metric(rid, "acc", 0.99, timestamp=9_000, step=9)
    client.log_param(rid, "writer", "second")
    f = tmp / "second.txt"
    f.write_text("second writer")
    client.log_artifact(rid, str(f))
    client.set_terminated(rid)
    # an existing run accepts more history
    client.log_metric(ids["main_run"], "loss", 0.01, timestamp=9_999, step=99)
    client.set_experiment_tag(ids["exp_ids"][0], "second", "yes")

    got = client.get_run(rid)
    assert got.data.metrics == {"acc": 0.99}
    assert got.data.params == {"writer": "second"}
    assert [f.path for f in client.list_artifacts(rid)] == ["second.txt"]
    assert client.get_run(ids["main_run"]).data.metrics["loss"] == 0.01
    assert len(client.get_metric_history(ids["main_run"], "loss")) == 6
    res = client.search_runs([ids["exp_ids"][0]], "metrics.acc > 0.9")
    assert [r.info.run_name for r in res] == ["second-writer"]
    return {"second_run": rid, "second_exp": new_exp}


def diff_snapshots(a, b, a_name: str, b_name: str, where: str = "") -> list[str]:
    """Leaf-level differences between two snapshots, as readable lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        problems = []
        for key in sorted(set(a) | set(b), key=str):
            here = f"{where}.{key}" if where else str(key)
            if key not in a:
                problems.append(f"{here}: only from {b_name}: {str(b[key])[:300]}")
            elif key not in b:
                problems.append(f"{here}: only from {a_name}: {str(a[key])[:300]}")
            else:
                problems += diff_snapshots(a[key], b[key], a_name, b_name, here)
        return problems
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        problems = []
        for i, (x, y) in enumerate(zip(a, b)):
            problems += diff_snapshots(x, y, a_name, b_name, f"{where}[{i}]")
        return problems
    if a != b:
        return [f"{where}: {a_name}={str(a)[:300]!s} {b_name}={str(b)[:300]!s}"]
    return []


def _nan_safe(obj):
    """NaN != NaN in Python: map float NaN (from a server emitting a bare NaN token) to MLflow's
    wire form, the string "NaN", so snapshots compare by value."""
    if isinstance(obj, float) and math.isnan(obj):
        return "NaN"
    if isinstance(obj, dict):
        return {k: _nan_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_safe(v) for v in obj]
    return obj


@pytest.fixture
def shared_database(request, tmp_path):
    """A fresh database of the test's backend, shared by the servers of one interop test."""
    backend = request.node.callspec.params["backend"]
    require_backend(backend)
    database = cs.Database(backend, tmp_path / "shared").create()
    yield database
    database.drop()


# Each case starts mlflow (20-30 s) up to twice. SQLite runs both directions; on PostgreSQL and MySQL
# mlflow writes first, ferroflow reads and writes more, and mlflow reads that back: one round trip each
# way in one case, to keep the suite's time.
INTEROP_CASES = [
    pytest.param("sqlite", "mlflow", "ferroflow", id="sqlite-mlflow-writes-ferroflow-reads"),
    pytest.param("sqlite", "ferroflow", "mlflow", id="sqlite-ferroflow-writes-mlflow-reads"),
    pytest.param("postgres", "mlflow", "ferroflow", id="postgres-mlflow-writes-ferroflow-reads"),
    pytest.param("mysql", "mlflow", "ferroflow", id="mysql-mlflow-writes-ferroflow-reads"),
]


@pytest.mark.parametrize("backend,writer,reader", INTEROP_CASES)
def test_db_interop(tmp_path, writer, reader, backend, shared_database):
    require_both()
    workdir = tmp_path / "shared"
    src = tmp_path / "src"
    tag = f"{writer}-to-{reader}"

    w = cs.Server(writer, workdir, shared_database)
    try:
        w.start()
        ids = fill(w.url, tag, src)
        check_written_data(w.url, ids)
        before = snapshot(w.url, ids)
    finally:
        mlflow.end_run()
        w.stop()

    r = cs.Server(reader, workdir, shared_database)
    try:
        r.start()
        after = snapshot(r.url, ids)
        problems = diff_snapshots(_nan_safe(before), _nan_safe(after), writer, reader)
        assert not problems, (
            f"{reader} reads {writer}'s DB differently ({len(problems)} differences):\n"
            + "\n".join(problems[:15])
        )
        check_written_data(r.url, ids)
        extra = write_more(r.url, ids, tmp_path)
        after_write = snapshot(r.url, ids)
    finally:
        mlflow.end_run()
        r.stop()

    # and the writer reads what the reader added
    w2 = cs.Server(writer, workdir, shared_database)
    try:
        w2.start()
        client = MlflowClient(w2.url)
        second = client.get_run(extra["second_run"])
        assert second.info.run_name == "second-writer"
        assert second.info.status == "FINISHED"
        assert second.data.metrics == {"acc": 0.99}
        assert client.get_experiment(extra["second_exp"]).lifecycle_stage == "active"
        assert client.get_experiment(ids["exp_ids"][0]).tags["second"] == "yes"
        local = client.download_artifacts(extra["second_run"], "second.txt", str(tmp_path / "dl"))
        assert Path(local).read_text() == "second writer"
        final = snapshot(w2.url, ids)
        problems = diff_snapshots(_nan_safe(after_write), _nan_safe(final), reader, writer)
        assert not problems, (
            f"{writer} reads {reader}'s writes differently ({len(problems)} differences):\n"
            + "\n".join(problems[:15])
        )
    finally:
        w2.stop()


# ------------------------------------------------------------------------------------ schema


def dump_schema(database: cs.Database) -> str:
    """The schema of `database` as its server's dump tool prints it, without what differs between two
    dumps of the same schema (pg_dump's random \\restrict key, the trigger's definer)."""
    admin = cs._Admin(database.backend)
    if database.backend == "postgres":
        tool = "pg_dump"
        command = [tool, "-h", admin.host, "-p", str(admin.port), "-U", admin.user,
                   "--schema-only", "--no-owner", "--no-privileges", database.name]
    else:
        tool = shutil.which("mariadb-dump") and "mariadb-dump" or "mysqldump"
        command = [tool, "-h", admin.host, "-P", str(admin.port), "-u", admin.user,
                   "--no-data", "--skip-comments", database.name]
    if not shutil.which(tool):
        if cs.in_ci():
            pytest.fail(f"{tool} is missing under CI=true")
        pytest.skip(f"SCHEMA CHECK NOT RUN: {tool} is missing")
    env = {**os.environ, "PGPASSWORD": admin.password, "MYSQL_PWD": admin.password}
    dump = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    lines = [line for line in dump.splitlines()
             if not line.startswith(("\\restrict", "\\unrestrict"))]
    # MariaDB lists a table's secondary keys in no stable order (two `mlflow db upgrade` runs differ):
    # compare each table's keys as a sorted run.
    normalized: list[str] = []
    keys: list[str] = []
    for line in lines + [""]:
        if line.startswith("  KEY "):
            keys.append(line.rstrip(","))
            continue
        normalized += sorted(keys)
        keys = []
        normalized.append(line.rstrip(",") if line.startswith("  ") else line)
    return re.sub(r"DEFINER=`[^`]*`@`[^`]*`", "DEFINER", "\n".join(normalized))


@pytest.mark.parametrize("backend", ["postgres", "mysql"])
def test_schema_matches_mlflow(tmp_path, backend):
    """The schema ferroflow creates in an empty database is the one `mlflow db upgrade` creates."""
    require_backend(backend)
    if "ferroflow" not in cs.requested_servers() or cs.binary_problem("ferroflow"):
        pytest.skip("SCHEMA CHECK NOT RUN: needs the ferroflow binary and COMPAT_SERVERS=ferroflow")
    ours = cs.Database(backend, tmp_path / "ferroflow").create()
    theirs = cs.Database(backend, tmp_path / "mlflow").create()
    try:
        server = cs.Server("ferroflow", tmp_path / "ferroflow", ours)
        try:
            server.start()
        finally:
            server.stop()
        upgrade = subprocess.run([str(cs.mlflow_bin()), "db", "upgrade", theirs.uri("mlflow")],
                                 capture_output=True, text=True, timeout=300)
        assert upgrade.returncode == 0, upgrade.stderr[-2000:]
        ferroflow_schema, mlflow_schema = dump_schema(ours), dump_schema(theirs)
        if ferroflow_schema != mlflow_schema:
            import difflib

            diff = "\n".join(difflib.unified_diff(mlflow_schema.splitlines(),
                                                  ferroflow_schema.splitlines(),
                                                  "mlflow", "ferroflow", lineterm="", n=1))
            pytest.fail(f"ferroflow's {backend} schema differs from mlflow's:\n{diff[:4000]}")
        assert ours.execute("SELECT version_num FROM alembic_version") == \
            theirs.execute("SELECT version_num FROM alembic_version")
    finally:
        ours.drop()
        theirs.drop()
