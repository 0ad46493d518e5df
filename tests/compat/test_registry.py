"""The model registry through the official client: registered models, versions, aliases, stages, tags,
searches, errors, and models loaded back by version and alias."""

import numpy as np
import pytest
from mlflow.exceptions import MlflowException

import mlflow


def raises_code(code, fn, *args, **kwargs):
    with pytest.raises(MlflowException) as e:
        fn(*args, **kwargs)
    assert e.value.error_code == code, f"{e.value.error_code}: {e.value.message}"
    return e.value


def message(err):
    """The server's message, without the `CODE: ` prefix the client adds."""
    return err.message.split(": ", 1)[1]


@pytest.fixture
def model_run(server, unique):
    """A finished run holding a logged sklearn model named `model`; yields (run_id, model_id, X)."""
    from sklearn.linear_model import LinearRegression

    mlflow.set_experiment(unique("registry"))
    X = np.array([[1.0], [2.0], [3.0]])
    y = np.array([2.0, 4.0, 6.0])
    with mlflow.start_run() as run:
        model = LinearRegression().fit(X, y)
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    return run.info.run_id, info.model_id, X


def test_register_load_by_version_and_alias(client, model_run, unique):
    run_id, model_id, X = model_run
    name = unique("reg")
    version = mlflow.register_model(f"runs:/{run_id}/model", name)
    assert version.name == name
    assert version.version == "1"
    assert version.status == "READY"
    assert version.current_stage == "None"
    assert version.run_id == run_id
    assert version.source == f"models:/{model_id}"

    client.set_registered_model_alias(name, "champion", "1")
    by_alias = client.get_model_version_by_alias(name, "champion")
    assert by_alias.version == "1"
    assert by_alias.aliases == ["champion"]
    assert client.get_registered_model(name).aliases == {"champion": "1"}

    # The logged model lists its registration.
    logged = client.get_logged_model(model_id)
    assert '"version": 1' in logged.tags["mlflow.modelVersions"]
    assert name in logged.tags["mlflow.modelVersions"]

    uri = client.get_model_version_download_uri(name, "1")
    assert uri.endswith(f"/models/{model_id}/artifacts")

    for model_uri in (f"models:/{name}/1", f"models:/{name}@champion", f"models:/{name}/latest"):
        loaded = mlflow.pyfunc.load_model(model_uri)
        np.testing.assert_allclose(loaded.predict(X), [2.0, 4.0, 6.0])

    client.delete_registered_model_alias(name, "champion")
    assert client.get_registered_model(name).aliases == {}
    err = raises_code("INVALID_PARAMETER_VALUE", client.get_model_version_by_alias, name, "champion")
    assert err.get_http_status_code() == 400
    assert message(err) == "Registered model alias champion not found."


def test_log_model_with_registered_model_name(client, server, unique):
    from sklearn.linear_model import LinearRegression

    mlflow.set_experiment(unique("registry"))
    name = unique("logreg")
    X = np.array([[0.0], [1.0]])
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            LinearRegression().fit(X, [1.0, 3.0]),
            name="model",
            pip_requirements=["scikit-learn"],
            registered_model_name=name,
        )
        mlflow.sklearn.log_model(
            LinearRegression().fit(X, [0.0, 1.0]),
            name="model2",
            pip_requirements=["scikit-learn"],
            registered_model_name=name,
        )
    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    latest = client.get_model_version_by_alias(name, "latest")
    assert latest.version == "2"
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    np.testing.assert_allclose(loaded.predict(np.array([[2.0]])), [5.0])


def test_registered_model_crud(client, unique):
    name = unique("crud")
    created = client.create_registered_model(name, tags={"team": "a"}, description="first")
    assert created.name == name
    assert created.description == "first"
    assert created.tags == {"team": "a"}
    assert created.creation_timestamp > 0
    assert created.latest_versions == []

    got = client.get_registered_model(name)
    assert got.last_updated_timestamp >= got.creation_timestamp

    updated = client.update_registered_model(name, description="second")
    assert updated.description == "second"

    client.set_registered_model_tag(name, "team", "b")
    client.set_registered_model_tag(name, "stage", "dev")
    assert client.get_registered_model(name).tags == {"team": "b", "stage": "dev"}
    client.delete_registered_model_tag(name, "stage")
    client.delete_registered_model_tag(name, "never-set")
    assert client.get_registered_model(name).tags == {"team": "b"}

    client.create_model_version(name, "s3://bucket/path/model", tags={"k": "v"}, description="d")
    new_name = unique("renamed")
    client.rename_registered_model(name, new_name)
    renamed = client.get_registered_model(new_name)
    assert renamed.name == new_name
    assert renamed.tags == {"team": "b"}
    assert [v.version for v in renamed.latest_versions] == ["1"]
    version = client.get_model_version(new_name, "1")
    assert version.tags == {"k": "v"}
    assert version.description == "d"
    raises_code("RESOURCE_DOES_NOT_EXIST", client.get_registered_model, name)

    client.delete_registered_model(new_name)
    raises_code("RESOURCE_DOES_NOT_EXIST", client.get_registered_model, new_name)
    raises_code("RESOURCE_DOES_NOT_EXIST", client.get_model_version, new_name, "1")


def test_model_versions_stages_tags_and_delete(client, unique):
    name = unique("stages")
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, "s3://bucket/path/model")
    v1 = client.get_model_version(name, "1")
    assert v1.source == "s3://bucket/path/model"
    assert v1.description == ""
    assert v1.run_id == ""
    assert v1.status == "READY"

    moved = client.transition_model_version_stage(name, "1", "production")
    assert moved.current_stage == "Production"
    client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True)
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert client.get_model_version(name, "2").current_stage == "Production"
    raises_code(
        "INVALID_PARAMETER_VALUE", client.transition_model_version_stage, name, "3", "bogus"
    )

    latest = {v.current_stage: v.version for v in client.get_latest_versions(name)}
    assert latest == {"Archived": "1", "Production": "2", "None": "3"}
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["2"]

    updated = client.update_model_version(name, "3", description="third")
    assert updated.description == "third"

    client.set_model_version_tag(name, "3", "quality", "good")
    client.set_model_version_tag(name, "3", "quality", "better")
    assert client.get_model_version(name, "3").tags == {"quality": "better"}
    client.delete_model_version_tag(name, "3", "quality")
    assert client.get_model_version(name, "3").tags == {}

    client.set_registered_model_alias(name, "prod", "2")
    client.delete_model_version(name, "2")
    raises_code("RESOURCE_DOES_NOT_EXIST", client.get_model_version, name, "2")
    assert client.get_registered_model(name).aliases == {}
    # A deleted version's number is never reused.
    assert client.create_model_version(name, "s3://bucket/path/model").version == "4"
    assert sorted(v.version for v in client.search_model_versions(f"name='{name}'")) == [
        "1", "3", "4",
    ]


def test_search_registered_models(client, unique):
    prefix = unique("srch")
    for suffix, tag in (("a", "x"), ("b", "y"), ("c", "x")):
        client.create_registered_model(f"{prefix}-{suffix}", tags={"kind": tag})

    names = [m.name for m in client.search_registered_models(f"name LIKE '{prefix}-%'")]
    assert names == [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    desc = client.search_registered_models(f"name LIKE '{prefix}-%'", order_by=["name DESC"])
    assert [m.name for m in desc] == [f"{prefix}-c", f"{prefix}-b", f"{prefix}-a"]
    tagged = client.search_registered_models(f"name LIKE '{prefix}-%' AND tags.kind = 'x'")
    assert [m.name for m in tagged] == [f"{prefix}-a", f"{prefix}-c"]
    listed = client.search_registered_models(f"name IN ('{prefix}-b', '{prefix}-c')")
    assert [m.name for m in listed] == [f"{prefix}-b", f"{prefix}-c"]
    assert client.search_registered_models(f"name ILIKE '{prefix.upper()}-A'")[0].name == (
        f"{prefix}-a"
    )

    page = client.search_registered_models(f"name LIKE '{prefix}-%'", max_results=2)
    assert [m.name for m in page] == [f"{prefix}-a", f"{prefix}-b"]
    assert page.token
    rest = client.search_registered_models(
        f"name LIKE '{prefix}-%'", max_results=2, page_token=page.token
    )
    assert [m.name for m in rest] == [f"{prefix}-c"]
    assert not rest.token

    raises_code("INVALID_PARAMETER_VALUE", client.search_registered_models, "run_id = 'x'")
    raises_code("INVALID_PARAMETER_VALUE", client.search_registered_models, "name = x")
    raises_code(
        "INVALID_PARAMETER_VALUE", client.search_registered_models, order_by=["bogus"]
    )


def test_search_model_versions(client, unique):
    name = unique("mvs")
    client.create_registered_model(name)
    run_a, run_b = "a" * 32, "b" * 32
    client.create_model_version(name, "s3://bucket/one", tags={"t": "1"})
    client.create_model_version(name, "s3://bucket/two", tags={"t": "2"})
    client.create_model_version(name, "s3://bucket/three")

    versions = client.search_model_versions(f"name = '{name}'")
    assert [v.version for v in versions] == ["3", "2", "1"]
    assert [v.version for v in client.search_model_versions(f"name = '{name}' AND tags.t = '2'")] == ["2"]
    assert [
        v.version
        for v in client.search_model_versions(f"name = '{name}' AND version_number >= 2",
                                              order_by=["version_number ASC"])
    ] == ["2", "3"]
    assert [
        v.version
        for v in client.search_model_versions(f"name = '{name}' AND source_path LIKE '%/t%'")
    ] == ["3", "2"]
    assert client.search_model_versions(f"run_id IN ('{run_a}', '{run_b}') AND name = '{name}'") == []

    page = client.search_model_versions(f"name = '{name}'", max_results=2)
    assert [v.version for v in page] == ["3", "2"]
    assert page.token
    raises_code(
        "INVALID_PARAMETER_VALUE", client.search_model_versions, "version_number = 1.5"
    )


def test_registry_errors(client, unique):
    name = unique("err")
    client.create_registered_model(name)
    err = raises_code("RESOURCE_ALREADY_EXISTS", client.create_registered_model, name)
    assert err.get_http_status_code() == 400
    assert message(err) == f"Registered Model (name={name}) already exists."

    missing = unique("missing")
    err = raises_code("RESOURCE_DOES_NOT_EXIST", client.get_registered_model, missing)
    assert err.get_http_status_code() == 404
    assert message(err) == f"Registered Model with name={missing} not found"
    raises_code("RESOURCE_DOES_NOT_EXIST", client.delete_registered_model, missing)
    raises_code("RESOURCE_DOES_NOT_EXIST", client.update_registered_model, missing, "d")
    err = raises_code("RESOURCE_DOES_NOT_EXIST", client.get_model_version, name, "7")
    assert message(err) == f"Model Version (name={name}, version=7) not found"
    raises_code("RESOURCE_DOES_NOT_EXIST", client.create_model_version, missing, "s3://b/m")
    raises_code("RESOURCE_DOES_NOT_EXIST", client.set_registered_model_alias, name, "a", "1")

    err = raises_code("INVALID_PARAMETER_VALUE", client.create_registered_model, "a/b")
    assert message(err) == "Invalid model name 'a/b'. Names cannot contain '/' or ':'."
    client.create_model_version(name, "s3://bucket/m")
    err = raises_code("INVALID_PARAMETER_VALUE", client.set_registered_model_alias, name, "latest", "1")
    assert message(err) == "'latest' alias name (case insensitive) is reserved."
    raises_code("INVALID_PARAMETER_VALUE", client.set_registered_model_alias, name, "v2", "1")
    raises_code("INVALID_PARAMETER_VALUE", client.set_registered_model_alias, name, "bad alias", "1")
    raises_code("INVALID_PARAMETER_VALUE", client.get_model_version, name, "one")

    other = unique("other")
    client.create_registered_model(other)
    err = raises_code("RESOURCE_ALREADY_EXISTS", client.rename_registered_model, name, other)
    assert err.get_http_status_code() == 400


def test_model_version_source_validation(client, model_run, unique):
    run_id, model_id, _ = model_run
    name = unique("src")
    client.create_registered_model(name)
    # runs:/ sources must name the run_id given.
    raises_code("INVALID_PARAMETER_VALUE", client.create_model_version, name, "runs:/abc/model")
    raises_code(
        "INVALID_PARAMETER_VALUE", client.create_model_version, name, f"runs:/{run_id}/model",
        run_id="c" * 32,
    )
    ok = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    assert ok.source == f"runs:/{run_id}/model"
    # Local paths and escaping paths are refused.
    raises_code("INVALID_PARAMETER_VALUE", client.create_model_version, name, "/etc/passwd")
    raises_code(
        "INVALID_PARAMETER_VALUE", client.create_model_version, name, "s3://bucket/a/../../b"
    )
    raises_code(
        "INVALID_PARAMETER_VALUE", client.create_model_version, name,
        "mlflow-artifacts:/1/other/artifacts", run_id=run_id,
    )
    # Sources whose scheme makes the server connect to the host they name are refused.
    err = raises_code(
        "INVALID_PARAMETER_VALUE", client.create_model_version, name, "http://example.com/m",
        run_id=run_id,
    )
    assert message(err).startswith("'source' cannot use the 'http' scheme")
    # A logged model source must match model_id.
    raises_code(
        "INVALID_PARAMETER_VALUE", client.create_model_version, name, f"models:/{model_id}",
        model_id="m-" + "0" * 32,
    )
    from_model = client.create_model_version(name, f"models:/{model_id}", model_id=model_id)
    assert from_model.run_id == run_id
    assert client.get_model_version_download_uri(name, from_model.version).endswith(
        f"/models/{model_id}/artifacts"
    )


def test_latest_versions_order(client, unique):
    name = unique("order")
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, "s3://bucket/path/model")
    client.transition_model_version_stage(name, "2", "Production")
    latest = [(v.current_stage, v.version) for v in client.get_latest_versions(name)]
    assert latest == [("None", "3"), ("Production", "2")]
    model = client.get_registered_model(name)
    assert [(v.current_stage, v.version) for v in model.latest_versions] == latest


def test_version_from_registered_sources(client, unique):
    source_name, copy_name = unique("src"), unique("copy")
    client.create_registered_model(source_name)
    client.create_model_version(source_name, "s3://bucket/one")
    client.create_model_version(source_name, "s3://bucket/two")
    client.transition_model_version_stage(source_name, "1", "Production")
    client.set_registered_model_alias(source_name, "champ", "2")
    client.create_registered_model(copy_name)
    expected = [
        (f"models:/{source_name}/Production", f"models:/{source_name}/1", "s3://bucket/one"),
        (f"models:/{source_name}@champ", f"models:/{source_name}/2", "s3://bucket/two"),
        (f"models:/{source_name}/latest", f"models:/{source_name}/2", "s3://bucket/two"),
        (f"models:/{source_name}/1", f"models:/{source_name}/1", "s3://bucket/one"),
    ]
    for index, (uri, canonical, location) in enumerate(expected, start=1):
        copied = client.copy_model_version(uri, copy_name)
        assert copied.version == str(index)
        assert copied.source == canonical
        assert client.get_model_version_download_uri(copy_name, copied.version) == location
    with pytest.raises(MlflowException):
        client.copy_model_version(f"models:/{source_name}/Staging", copy_name)


def test_model_version_get_artifact_for_the_ui(client, server, model_run, unique):
    """The UI's `/model-versions/get-artifact` serves a file of the version's model, and refuses paths that
    leave it."""
    import requests

    run_id, model_id, _ = model_run
    name = unique("ui")
    mlflow.register_model(f"runs:/{run_id}/model", name)
    r = requests.get(f"{server.url}/model-versions/get-artifact",
                     params={"name": name, "version": "1", "path": "MLmodel"}, timeout=30)
    assert r.status_code == 200, r.text
    assert f"model_id: {model_id}" in r.text
    assert "sklearn" in r.text
    r = requests.get(f"{server.url}/model-versions/get-artifact",
                     params={"name": name, "version": "1", "path": "../../../../etc/passwd"}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = requests.get(f"{server.url}/model-versions/get-artifact",
                     params={"name": name, "version": "7", "path": "MLmodel"}, timeout=30)
    assert r.status_code == 404, r.text
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
