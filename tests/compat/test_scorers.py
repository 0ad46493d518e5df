"""MLflow 3 registered scorers through the official client (`Scorer.register`,
`mlflow.genai.scorers.list_scorers`, `list_scorer_versions`, `get_scorer`, `delete_scorer`), the REST
messages the client hides (JSON types, errors, online configs), and custom `@scorer` scorers, which a
server takes only with MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS set: refused by the shared servers, accepted
by a server started with the variable, and read back by the other server from the same database."""

import json
import re

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.genai import scorers as genai_scorers
from mlflow.genai.scorers import RelevanceToQuery, Safety, scorer
from mlflow.genai.scorers.registry import list_scorer_versions

import compat_servers as cs

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ENV = "MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS"


@scorer
def exact_match(outputs, expectations) -> bool:
    return outputs == expectations["answer"]


def api(server, method, endpoint, **kwargs):
    return requests.request(method, f"{server.url}/api/3.0/mlflow/scorers/{endpoint}", timeout=30, **kwargs)


def test_register_list_versions_get_and_delete(server, experiment_id):
    first = Safety().register(name="safety", experiment_id=experiment_id)
    assert first.name == "safety" and first.scorer_version == 1
    second = Safety().register(name="safety", experiment_id=experiment_id)
    assert second.scorer_version == 2
    RelevanceToQuery().register(name="relevance", experiment_id=experiment_id)

    listed = genai_scorers.list_scorers(experiment_id=experiment_id)
    assert [(s.name, s.scorer_version) for s in listed] == [("relevance", 1), ("safety", 2)]
    assert isinstance(listed[1], Safety) and listed[1].sample_rate is None

    versions = list_scorer_versions(name="safety", experiment_id=experiment_id)
    assert [version for _, version in versions] == [1, 2]

    latest = genai_scorers.get_scorer(name="safety", experiment_id=experiment_id)
    assert isinstance(latest, Safety) and latest.scorer_version == 2
    assert genai_scorers.get_scorer(name="safety", experiment_id=experiment_id, version=1).scorer_version == 1

    genai_scorers.delete_scorer(name="safety", experiment_id=experiment_id, version=1)
    versions = list_scorer_versions(name="safety", experiment_id=experiment_id)
    assert [version for _, version in versions] == [2]
    with pytest.raises(MlflowException, match="Scorer with name 'safety' and version 1 not found") as e:
        genai_scorers.get_scorer(name="safety", experiment_id=experiment_id, version=1)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    genai_scorers.delete_scorer(name="safety", experiment_id=experiment_id, version="all")
    with pytest.raises(MlflowException) as e:
        genai_scorers.get_scorer(name="safety", experiment_id=experiment_id)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert f"Scorer with name 'safety' not found for experiment {experiment_id}." in e.value.message
    assert [s.name for s in genai_scorers.list_scorers(experiment_id=experiment_id)] == ["relevance"]
    # A name registered again after deletion starts over at version 1, under a new id.
    assert Safety().register(name="safety", experiment_id=experiment_id).scorer_version == 1


def test_wire_messages(server, experiment_id):
    body = json.dumps(Safety().model_dump())
    assert api(server, "GET", "list", params={"experiment_id": experiment_id}).json() == {}
    registered = api(server, "POST", "register",
                     json={"experiment_id": experiment_id, "name": "s", "serialized_scorer": body})
    assert registered.status_code == 200, registered.text
    answer = registered.json()
    assert answer["version"] == 1 and answer["name"] == "s"
    # A string in RegisterScorer.Response, an int32 (a JSON number) in Scorer.
    assert answer["experiment_id"] == experiment_id
    assert answer["serialized_scorer"] == body and answer["creation_time"] > 0
    assert UUID.match(answer["scorer_id"])

    listed = api(server, "GET", "list", params={"experiment_id": experiment_id}).json()
    assert listed == {"scorers": [{
        "experiment_id": int(experiment_id), "scorer_name": "s", "scorer_version": 1,
        "serialized_scorer": body, "creation_time": answer["creation_time"],
        "scorer_id": answer["scorer_id"],
    }]}
    got = api(server, "GET", "get", params={"experiment_id": experiment_id, "name": "s", "version": "1"})
    assert got.json() == {"scorer": listed["scorers"][0]}
    # Scorers without an online config have none: the client gets an empty list.
    configs = api(server, "GET", "online-configs", params=[("scorer_ids", answer["scorer_id"]),
                                                             ("scorer_ids", "nope")])
    assert configs.status_code == 200 and configs.json() == {"configs": []}
    ajax = requests.get(f"{server.url}/ajax-api/3.0/mlflow/scorers/versions",
                        params={"experiment_id": experiment_id, "name": "s"}, timeout=30)
    assert [s["scorer_version"] for s in ajax.json()["scorers"]] == [1]
    assert api(server, "GET", "list", params={"experiment_id": experiment_id, "experiment_ids": experiment_id}).status_code == 400

    # `versions` (like `list`) answers each scorer re-serialized by Python's json.dumps; `get` the text.
    compact = '{"name":"c","aggregations":null,"note":"\u00e9","x":1.50}'
    assert api(server, "POST", "register", json={"experiment_id": experiment_id, "name": "c",
                                                 "serialized_scorer": compact}).json()["serialized_scorer"] == compact
    got = api(server, "GET", "get", params={"experiment_id": experiment_id, "name": "c"}).json()
    assert got["scorer"]["serialized_scorer"] == compact
    versions = api(server, "GET", "versions", params={"experiment_id": experiment_id, "name": "c"}).json()
    assert versions["scorers"][0]["serialized_scorer"] == json.dumps(json.loads(compact))


def test_list_across_experiments(server, client, unique):
    first = client.create_experiment(unique("exp"))
    second = client.create_experiment(unique("exp"))
    gone = client.create_experiment(unique("exp"))
    for experiment in (first, second, gone):
        Safety().register(name="safety", experiment_id=experiment)
    client.delete_experiment(gone)
    listed = api(server, "GET", "list", params=[("experiment_ids", first), ("experiment_ids", second),
                                                ("experiment_ids", gone)]).json()["scorers"]
    assert [s["experiment_id"] for s in listed] == sorted([int(first), int(second)])
    everywhere = api(server, "GET", "list").json()["scorers"]
    ids = {s["experiment_id"] for s in everywhere}
    assert {int(first), int(second)} <= ids and int(gone) not in ids
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        genai_scorers.list_scorers(experiment_id=gone)


def test_errors(server, experiment_id):
    body = json.dumps(Safety().model_dump())

    def register(**fields):
        return api(server, "POST", "register", json=fields)

    missing = register(experiment_id=experiment_id, serialized_scorer=body)
    assert missing.status_code == 400
    assert missing.json()["message"].startswith("Missing value for required parameter 'name'")
    bad_json = register(experiment_id=experiment_id, name="x", serialized_scorer="{nope")
    assert bad_json.status_code == 400
    assert bad_json.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert bad_json.json()["message"] == "serialized_scorer must be valid JSON"
    blank = register(experiment_id=experiment_id, name="  ", serialized_scorer=body)
    assert blank.json()["message"] == "Scorer name cannot be empty or contain only whitespace."
    no_experiment = register(experiment_id="987654321", name="x", serialized_scorer=body)
    assert no_experiment.status_code == 404
    assert no_experiment.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    steering = json.dumps({"name": "t", "third_party_scorer_data": {"kwargs": {"api_base": "http://x"}}})
    refused = register(experiment_id=experiment_id, name="t", serialized_scorer=steering)
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("third_party_scorer_data.kwargs must not contain 'api_base'")

    # Custom code is refused by a server without MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS, through the client
    # too (it leaves the decision to a remote server).
    with pytest.raises(MlflowException, match=ENV) as e:
        exact_match.register(name="exact", experiment_id=experiment_id)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Custom scorer registration (using @scorer decorator) is disabled by default" in e.value.message

    unknown = api(server, "DELETE", "delete", json={"experiment_id": experiment_id, "name": "ghost"})
    assert unknown.status_code == 404
    assert unknown.json()["message"] == f"Scorer with name 'ghost' not found for experiment {experiment_id}."
    with pytest.raises(MlflowException, match="not found"):
        list_scorer_versions(name="ghost", experiment_id=experiment_id)
    Safety().register(name="safety", experiment_id=experiment_id)
    no_version = api(server, "DELETE", "delete", json={"experiment_id": experiment_id, "name": "safety", "version": 7})
    assert no_version.status_code == 404
    assert no_version.json()["message"] == (
        f"Scorer with name 'safety' and version 7 not found for experiment {experiment_id}.")


@pytest.fixture
def custom_env(monkeypatch):
    """The variable set for the servers started here and for this client, which rebuilds the scorer."""
    monkeypatch.setenv(ENV, "true")


def _start(kind, workdir, database):
    server = cs.Server(kind, workdir, database)
    try:
        server.start()
    except cs.ServerUnavailable as e:
        pytest.fail(f"{kind} server unavailable: {e}", pytrace=False)
    return server


def test_custom_scorers_with_the_variable_and_across_servers(tmp_path, custom_env):
    import mlflow

    kinds = [kind for kind in cs.requested_servers() if not cs.binary_problem(kind)]
    if not kinds:
        pytest.skip("no server binary")
    database = cs.Database("sqlite", tmp_path).create()
    readers = kinds[1:] + kinds[:1]  # each server reads what the other wrote
    try:
        for writer, reader in zip(kinds, readers):
            srv = _start(writer, tmp_path, database)
            try:
                mlflow.set_tracking_uri(srv.url)
                experiment = mlflow.MlflowClient(srv.url).create_experiment(f"custom-{writer}")
                registered = exact_match.register(name="exact", experiment_id=experiment)
                assert registered.scorer_version == 1
                Safety().register(name="safety", experiment_id=experiment)
            finally:
                srv.stop()
            srv = _start(reader, tmp_path, database)
            try:
                mlflow.set_tracking_uri(srv.url)
                got = genai_scorers.get_scorer(name="exact", experiment_id=experiment)
                assert got.name == "exact" and got.scorer_version == 1
                assert got(outputs="a", expectations={"answer": "a"}) is True
                assert exact_match.register(name="exact", experiment_id=experiment).scorer_version == 2
                listed = genai_scorers.list_scorers(experiment_id=experiment)
                assert [(s.name, s.scorer_version) for s in listed] == [("exact", 2), ("safety", 1)]
            finally:
                srv.stop()
    finally:
        database.drop()
