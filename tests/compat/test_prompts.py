"""The prompt registry through `mlflow.genai`: prompts are registered models tagged as prompts, so this
exercises the registry routes with the prompt conventions (tags, placeholder sources, searches that keep
prompts and models apart)."""

import pytest
import requests
from mlflow.exceptions import MlflowException

import mlflow
import mlflow.genai


def test_text_prompt_versions_aliases_and_latest(server, unique):
    name = unique("prompt")
    first = mlflow.genai.register_prompt(
        name, "Hello {{name}}!", commit_message="first", tags={"team": "a"}
    )
    assert first.name == name
    assert first.version == 1
    assert first.template == "Hello {{name}}!"
    assert first.variables == {"name"}
    assert first.commit_message == "first"
    second = mlflow.genai.register_prompt(name, "Hi {{name}}, welcome to {{place}}.")
    assert second.version == 2

    by_version = mlflow.genai.load_prompt(f"prompts:/{name}/1")
    assert by_version.template == "Hello {{name}}!"
    assert by_version.format(name="Ada") == "Hello Ada!"
    assert mlflow.genai.load_prompt(name, version=2).variables == {"name", "place"}
    latest = mlflow.genai.load_prompt(f"prompts:/{name}@latest")
    assert latest.version == 2

    mlflow.genai.set_prompt_alias(name, "production", 1)
    aliased = mlflow.genai.load_prompt(f"prompts:/{name}@production")
    assert aliased.version == 1
    assert aliased.aliases == ["production"]
    mlflow.genai.delete_prompt_alias(name, "production")
    with pytest.raises(MlflowException):
        mlflow.genai.load_prompt(f"prompts:/{name}@production", cache_ttl_seconds=0)

    # Stored as MLflow stores prompts: the registry rows carry the prompt tags.
    api = f"{server.url}/api/2.0/mlflow"
    model = requests.get(f"{api}/registered-models/get", params={"name": name}).json()
    model_tags = {t["key"]: t["value"] for t in model["registered_model"]["tags"]}
    assert model_tags["mlflow.prompt.is_prompt"] == "true"
    assert model_tags["team"] == "a"
    version = requests.get(
        f"{api}/model-versions/get", params={"name": name, "version": "1"}
    ).json()["model_version"]
    version_tags = {t["key"]: t["value"] for t in version["tags"]}
    assert version["source"] == "dummy-source"
    assert version_tags["mlflow.prompt.text"] == "Hello {{name}}!"
    assert version_tags["_mlflow_prompt_type"] == "text"
    assert version["description"] == "first"


def test_chat_prompt(server, unique):
    name = unique("chat")
    template = [
        {"role": "system", "content": "You are {{style}}."},
        {"role": "user", "content": "Tell me about {{topic}}."},
    ]
    registered = mlflow.genai.register_prompt(name, template, commit_message="chat v1")
    assert registered.is_text_prompt is False
    loaded = mlflow.genai.load_prompt(f"prompts:/{name}/1")
    assert loaded.template == template
    assert loaded.variables == {"style", "topic"}
    assert loaded.format(style="brief", topic="Rust") == [
        {"role": "system", "content": "You are brief."},
        {"role": "user", "content": "Tell me about Rust."},
    ]


def test_prompt_tags(server, unique):
    name = unique("tagged")
    mlflow.genai.register_prompt(name, "x {{y}}")
    mlflow.genai.set_prompt_tag(name, "owner", "me")
    assert mlflow.genai.get_prompt_tags(name)["owner"] == "me"
    mlflow.genai.delete_prompt_tag(name, "owner")
    assert "owner" not in mlflow.genai.get_prompt_tags(name)
    mlflow.genai.set_prompt_version_tag(name, 1, "quality", "good")
    assert mlflow.genai.load_prompt(name, version=1).tags["quality"] == "good"
    mlflow.genai.delete_prompt_version_tag(name, 1, "quality")
    assert "quality" not in mlflow.genai.load_prompt(name, version=1, cache_ttl_seconds=0).tags


def test_searches_keep_prompts_and_models_apart(client, unique):
    prefix = unique("apart")
    prompt_name, model_name = f"{prefix}-prompt", f"{prefix}-model"
    mlflow.genai.register_prompt(prompt_name, "p {{x}}")
    client.create_registered_model(model_name)
    client.create_model_version(model_name, "s3://bucket/model")

    prompts = mlflow.genai.search_prompts(f"name LIKE '{prefix}-%'")
    assert [p.name for p in prompts] == [prompt_name]
    models = client.search_registered_models(f"name LIKE '{prefix}-%'")
    assert [m.name for m in models] == [model_name]
    versions = client.search_model_versions(f"name LIKE '{prefix}-%'")
    assert [(v.name, v.version) for v in versions] == [(model_name, "1")]
    prompt_versions = client.search_model_versions(
        f"name = '{prompt_name}' AND tags.`mlflow.prompt.is_prompt` = 'true'"
    )
    assert [v.version for v in prompt_versions] == ["1"]

    # A model and a prompt cannot share a name.
    with pytest.raises(MlflowException) as e:
        client.create_registered_model(prompt_name)
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert "already taken by a prompt" in e.value.message
