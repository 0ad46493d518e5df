"""Artifacts through the official client (proxied `mlflow-artifacts:` store)."""

import io
import json
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
import yaml
from mlflow.exceptions import MlflowException
from PIL import Image

BINARY = bytes(range(256)) * 64 + b"\x00\xff\r\n\r\n--end"


def tree(root: Path) -> dict[str, bytes]:
    """{relative posix path: bytes} of every file under root."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def listing(client, run_id, path=None):
    return sorted((f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id, path))


@pytest.fixture
def run(server, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id) as r:
        yield r


def test_log_artifact_and_download(server, client, run, tmp_path):
    src = tmp_path / "model.bin"
    src.write_bytes(BINARY)
    text = tmp_path / "notes.txt"
    text.write_text("hello\nworld\n")
    mlflow.log_artifact(str(src))
    mlflow.log_artifact(str(text), artifact_path="docs/deep")
    run_id = run.info.run_id

    assert listing(client, run_id) == [("docs", True, None), ("model.bin", False, len(BINARY))]
    assert listing(client, run_id, "docs") == [("docs/deep", True, None)]
    assert listing(client, run_id, "docs/deep") == [("docs/deep/notes.txt", False, 12)]

    out = tmp_path / "out"
    out.mkdir()
    local = client.download_artifacts(run_id, "model.bin", str(out))
    assert Path(local).read_bytes() == BINARY
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="docs/deep/notes.txt",
                                                dst_path=str(out / "n"))
    assert Path(local).read_text() == "hello\nworld\n"


def test_log_artifacts_directory_tree(server, client, run, tmp_path):
    src = tmp_path / "tree"
    files = {
        "top.txt": b"top level",
        "a/one.json": b'{"x": 1}',
        "a/b/two.bin": BINARY,
        "a/b/c/three.csv": b"col1,col2\n1,2\n",
        "empty.txt": b"",
        "with space.txt": b"spaces in name",
        "ünïcode-ñame.txt": "ünïcode content ✓".encode(),
    }
    for rel, data in files.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    mlflow.log_artifacts(str(src))
    mlflow.log_artifacts(str(src / "a"), artifact_path="copy")
    run_id = run.info.run_id

    assert listing(client, run_id) == sorted(
        [
            ("a", True, None),
            ("copy", True, None),
            ("empty.txt", False, None),  # file_size 0 is omitted on the wire
            ("top.txt", False, 9),
            ("with space.txt", False, 14),
            ("ünïcode-ñame.txt", False, len(files["ünïcode-ñame.txt"])),
        ]
    )
    assert listing(client, run_id, "a/b") == [
        ("a/b/c", True, None),
        ("a/b/two.bin", False, len(BINARY)),
    ]

    whole = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "all")))
    expected = dict(files)
    expected.update({f"copy/{k[2:]}": v for k, v in files.items() if k.startswith("a/")})
    assert tree(whole) == expected

    sub = Path(client.download_artifacts(run_id, "a", str(tmp_path / "sub")))
    assert sub.name == "a"
    assert tree(sub) == {k[2:]: v for k, v in files.items() if k.startswith("a/")}


def test_log_text_and_dict(server, client, run, tmp_path):
    mlflow.log_text("plain text ✓\nline 2", "texts/readme.txt")
    mlflow.log_dict({"b": [1, 2, {"c": None}], "a": "x"}, "configs/conf.json")
    mlflow.log_dict({"name": "model", "layers": [64, 32]}, "configs/conf.yaml")
    run_id = run.info.run_id
    uri = run.info.artifact_uri

    assert mlflow.artifacts.load_text(f"{uri}/texts/readme.txt") == "plain text ✓\nline 2"
    assert mlflow.artifacts.load_dict(f"{uri}/configs/conf.json") == {
        "b": [1, 2, {"c": None}],
        "a": "x",
    }
    raw = Path(client.download_artifacts(run_id, "configs/conf.yaml", str(tmp_path)))
    assert yaml.safe_load(raw.read_text()) == {"name": "model", "layers": [64, 32]}
    raw_json = Path(client.download_artifacts(run_id, "configs/conf.json", str(tmp_path)))
    assert json.loads(raw_json.read_text()) == {"b": [1, 2, {"c": None}], "a": "x"}
    assert [f.path for f in client.list_artifacts(run_id, "configs")] == [
        "configs/conf.json",
        "configs/conf.yaml",
    ]


def test_log_image_numpy(server, client, run, tmp_path):
    img = np.zeros((8, 12, 3), dtype=np.uint8)
    img[:, :6] = [255, 0, 0]
    img[:, 6:] = [0, 0, 255]
    mlflow.log_image(img, "plots/img.png")
    local = client.download_artifacts(run.info.run_id, "plots/img.png", str(tmp_path))
    data = Path(local).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert back.shape == (8, 12, 3)
    assert (back == img).all()
    (entry,) = client.list_artifacts(run.info.run_id, "plots")
    assert entry.path == "plots/img.png" and entry.file_size == len(data)


def test_log_image_with_key_and_step(server, client, run):
    img = np.full((4, 4), 128, dtype=np.uint8)
    mlflow.log_image(img, key="sample", step=3, synchronous=True)
    entries = client.list_artifacts(run.info.run_id, "images")
    names = sorted(e.path for e in entries)
    # full image + compressed copy; names contain '+' (must survive URL encoding)
    assert len(names) == 2, names
    assert all(n.startswith("images/sample+step+3+timestamp+") for n in names), names
    assert names[0].endswith("+compressed.webp") and names[1].endswith(".png"), names
    assert client.get_run(run.info.run_id).data.tags["mlflow.loggedImages"] == "True"
    data = Path(client.download_artifacts(run.info.run_id, names[1])).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_overwrite_artifact(server, client, run, tmp_path):
    mlflow.log_text("first version", "f.txt")
    mlflow.log_text("second", "f.txt")
    (entry,) = client.list_artifacts(run.info.run_id)
    assert (entry.path, entry.file_size) == ("f.txt", 6)
    local = client.download_artifacts(run.info.run_id, "f.txt", str(tmp_path))
    assert Path(local).read_text() == "second"


def test_client_log_artifact_to_finished_run(client, experiment_id, tmp_path):
    run = client.create_run(experiment_id)
    client.set_terminated(run.info.run_id)
    f = tmp_path / "late.txt"
    f.write_text("late")
    client.log_artifact(run.info.run_id, str(f), artifact_path="after")
    assert listing(client, run.info.run_id, "after") == [("after/late.txt", False, 4)]


def test_list_empty_and_missing(client, experiment_id):
    run = client.create_run(experiment_id)
    assert client.list_artifacts(run.info.run_id) == []
    assert client.list_artifacts(run.info.run_id, "does/not/exist") == []


def test_download_missing_artifact_fails(client, experiment_id, tmp_path):
    run = client.create_run(experiment_id)
    with pytest.raises((MlflowException, OSError)):
        client.download_artifacts(run.info.run_id, "nope.txt", str(tmp_path))


def test_artifact_in_default_experiment(client, tmp_path):
    run = client.create_run("0")
    f = tmp_path / "d.txt"
    f.write_text("default")
    client.log_artifact(run.info.run_id, str(f))
    local = client.download_artifacts(run.info.run_id, "d.txt", str(tmp_path / "o"))
    assert Path(local).read_text() == "default"
    client.delete_run(run.info.run_id)


# ------------------------------------------------------------------- raw proxied-artifact wire


def artifacts_url(server, path=""):
    return f"{server.url}/api/2.0/mlflow-artifacts/artifacts{('/' + path) if path else ''}"


def test_raw_artifact_put_get_list(server, client, experiment_id):
    run = client.create_run(experiment_id)
    rel = f"{experiment_id}/{run.info.run_id}/artifacts"
    r = requests.put(artifacts_url(server, f"{rel}/raw/x.bin"), data=BINARY)
    assert r.status_code == 200, r.text
    r = requests.get(artifacts_url(server, f"{rel}/raw/x.bin"))
    assert r.status_code == 200
    assert r.content == BINARY

    r = requests.get(artifacts_url(server), params={"path": rel})
    assert r.status_code == 200
    assert r.json() == {"files": [{"path": "raw", "is_dir": True}]}
    r = requests.get(artifacts_url(server), params={"path": f"{rel}/raw"})
    assert r.json() == {"files": [{"path": "x.bin", "is_dir": False, "file_size": len(BINARY)}]}

    # a missing directory and a file path both list as {}
    assert requests.get(artifacts_url(server), params={"path": f"{rel}/nope"}).json() == {}
    assert requests.get(artifacts_url(server), params={"path": f"{rel}/raw/x.bin"}).json() == {}

    r = requests.get(artifacts_url(server, f"{rel}/raw/missing.bin"))
    assert r.status_code == 404
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_artifacts_stored_under_destination(server, client, experiment_id, tmp_path):
    """The proxied store lays files out as <artifacts-destination>/<exp>/<run>/artifacts/..."""
    run = client.create_run(experiment_id)
    f = tmp_path / "layout.txt"
    f.write_text("layout")
    client.log_artifact(run.info.run_id, str(f), artifact_path="x")
    on_disk = server.artifacts / experiment_id / run.info.run_id / "artifacts" / "x" / "layout.txt"
    assert on_disk.read_text() == "layout"
    assert os.path.getsize(on_disk) == 6
