"""MLflow's basic-auth app: `server --app-name basic-auth` on a fresh auth database with a configured
admin, driven through the official client (`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD` and
`mlflow.server.get_app_client("basic-auth", ...)`), and the refusals of security cases 12 (missing
authorization) and 13 (weak credentials). Every test runs against ferroflow and `mlflow server`."""

from __future__ import annotations

import base64
import uuid

import pytest
import requests

import compat_servers as cs

ADMIN = "admin"
ADMIN_PASSWORD = "admin-password-1234"
USER_PASSWORD = "user-password-1234"


def start_auth_server(kind: str, workdir, database_uri: str):
    """A server of `kind` with basic auth on `database_uri` (default READ, the admin configured); yields
    it and stops it."""
    problem = cs.binary_problem(kind)
    if problem:
        pytest.skip(f"{kind} unavailable: {problem}")
    config = workdir / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {database_uri}\n"
        f"admin_username = {ADMIN}\n"
        f"admin_password = {ADMIN_PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_AUTH_CONFIG_PATH", str(config))
    mp.setenv("MLFLOW_FLASK_SERVER_SECRET_KEY", "compat-suite-csrf-key")
    mp.delenv("MLFLOW_AUTH_ADMIN_USERNAME", raising=False)
    mp.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    server = cs.Server(kind, workdir)
    server.extra_args = ["--app-name", "basic-auth"]
    try:
        server.start()
    except cs.ServerUnavailable as e:
        mp.undo()
        pytest.fail(f"{kind} with basic auth unavailable: {e}", pytrace=False)
    yield server
    server.stop()
    mp.undo()


@pytest.fixture(scope="module", params=cs.requested_servers())
def auth_server(request, tmp_path_factory):
    """A server of each kind with basic auth on SQLite, its auth database fresh, default READ."""
    workdir = tmp_path_factory.mktemp(f"{request.param}-auth")
    yield from start_auth_server(request.param, workdir, f"sqlite:///{workdir / 'basic_auth.db'}")


def as_user(monkeypatch, username: str, password: str):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def admin_client(auth_server, monkeypatch):
    import mlflow.server

    as_user(monkeypatch, ADMIN, ADMIN_PASSWORD)
    return mlflow.server.get_app_client("basic-auth", tracking_uri=auth_server.url)


@pytest.fixture
def new_user(admin_client):
    username = name("user")
    admin_client.create_user(username, USER_PASSWORD)
    return username


def test_unauthenticated_and_wrong_password_are_401_and_health_is_open(auth_server):
    url = auth_server.url
    assert requests.get(f"{url}/health", timeout=10).status_code == 200
    assert requests.get(f"{url}/api/3.0/mlflow/server-info", timeout=10).status_code == 200
    for path in ("/version", "/api/2.0/mlflow/experiments/search?max_results=1"):
        response = requests.get(f"{url}{path}", timeout=10)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"] == 'Basic realm="mlflow"'
        assert "You are not authenticated" in response.text
        wrong = requests.get(f"{url}{path}", headers=basic(ADMIN, "wrong-password-12"), timeout=10)
        assert wrong.status_code == 401
        unknown = requests.get(f"{url}{path}", headers=basic("nobody", ADMIN_PASSWORD), timeout=10)
        assert unknown.status_code == 401
    ok = requests.get(f"{url}/version", headers=basic(ADMIN, ADMIN_PASSWORD), timeout=10)
    assert ok.status_code == 200 and ok.text.strip() == "3.17.2"


def test_tracking_client_with_wrong_credentials_fails(auth_server, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    as_user(monkeypatch, ADMIN, "not-the-password")
    with pytest.raises(MlflowException) as raised:
        MlflowClient(auth_server.url, registry_uri=auth_server.url).search_experiments()
    assert "401" in str(raised.value) or "not authenticated" in str(raised.value).lower()


def test_user_crud_through_the_auth_client(admin_client, monkeypatch):
    from mlflow.exceptions import RestException

    username = name("crud")
    user = admin_client.create_user(username, USER_PASSWORD)
    assert user.username == username and user.is_admin is False and user.id > 0
    fetched = admin_client.get_user(username)
    assert (fetched.id, fetched.username, fetched.is_admin) == (user.id, username, False)

    with pytest.raises(RestException) as duplicate:
        admin_client.create_user(username, USER_PASSWORD)
    assert duplicate.value.error_code == "RESOURCE_ALREADY_EXISTS"

    admin_client.update_user_admin(username, True)
    assert admin_client.get_user(username).is_admin is True
    admin_client.update_user_admin(username, False)
    assert admin_client.get_user(username).is_admin is False

    admin_client.update_user_password(username, "a-brand-new-password")
    admin_client.delete_user(username)
    with pytest.raises(RestException) as missing:
        admin_client.get_user(username)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert f"User with username={username} not found" in missing.value.message


def test_password_change_takes_effect_and_self_service_needs_the_current_one(
    auth_server, admin_client, new_user, monkeypatch
):
    import mlflow.server
    from mlflow.exceptions import RestException

    url = auth_server.url
    as_user(monkeypatch, new_user, USER_PASSWORD)
    own = mlflow.server.get_app_client("basic-auth", tracking_uri=url)
    with pytest.raises(RestException) as missing_current:
        own.update_user_password(new_user, "another-password-99")
    assert "Current password is required" in missing_current.value.message
    own.update_user_password(new_user, "another-password-99", current_password=USER_PASSWORD)
    assert requests.get(f"{url}/version", headers=basic(new_user, USER_PASSWORD),
                        timeout=10).status_code == 401
    assert requests.get(f"{url}/version", headers=basic(new_user, "another-password-99"),
                        timeout=10).status_code == 200


def test_users_may_not_administer_users(auth_server, new_user, monkeypatch):
    url = auth_server.url
    headers = basic(new_user, USER_PASSWORD)
    other = name("other")
    created = requests.post(f"{url}/api/2.0/mlflow/users/create",
                            json={"username": other, "password": USER_PASSWORD},
                            headers=headers, timeout=10)
    assert created.status_code == 403 and created.text == "Permission denied"
    promoted = requests.patch(f"{url}/api/2.0/mlflow/users/update-admin",
                              json={"username": new_user, "is_admin": True},
                              headers=headers, timeout=10)
    assert promoted.status_code == 403
    someone_else = requests.get(f"{url}/api/2.0/mlflow/users/get",
                                params={"username": ADMIN}, headers=headers, timeout=10)
    assert someone_else.status_code == 403
    own = requests.get(f"{url}/api/2.0/mlflow/users/get",
                       params={"username": new_user}, headers=headers, timeout=10)
    assert own.status_code == 200 and own.json()["user"]["username"] == new_user
    current = requests.get(f"{url}/api/2.0/mlflow/users/current", headers=headers, timeout=10)
    assert current.status_code == 200
    assert current.json()["user"]["username"] == new_user
    assert current.json()["user"]["is_admin"] is False


def test_weak_credentials_are_refused(auth_server, admin_client):
    """Security case 13: empty or short passwords, a user without a password, unauthenticated
    user creation."""
    from mlflow.exceptions import RestException

    url = auth_server.url
    with pytest.raises(RestException) as short:
        admin_client.create_user(name("weak"), "short")
    assert short.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Password must be at least 12 characters." in short.value.message

    admin = basic(ADMIN, ADMIN_PASSWORD)
    empty = requests.post(f"{url}/api/2.0/mlflow/users/create",
                          json={"username": name("empty"), "password": ""},
                          headers=admin, timeout=10)
    assert empty.status_code == 400
    no_password = requests.post(f"{url}/api/2.0/mlflow/users/create",
                                json={"username": name("nopw")}, headers=admin, timeout=10)
    assert no_password.status_code == 400
    unauthenticated = requests.post(f"{url}/api/2.0/mlflow/users/create",
                                    json={"username": name("anon"), "password": USER_PASSWORD},
                                    timeout=10)
    assert unauthenticated.status_code == 401
    signup = requests.get(f"{url}/signup", timeout=10)
    assert signup.status_code == 401
    with pytest.raises(RestException):
        admin_client.update_user_password(ADMIN, "tiny", current_password=ADMIN_PASSWORD)


def test_creator_gets_manage_and_default_read_users_cannot_write(
    auth_server, admin_client, monkeypatch
):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    owner, reader = name("owner"), name("reader")
    admin_client.create_user(owner, USER_PASSWORD)
    admin_client.create_user(reader, USER_PASSWORD)

    as_user(monkeypatch, owner, USER_PASSWORD)
    owner_client = MlflowClient(auth_server.url, registry_uri=auth_server.url)
    experiment_id = owner_client.create_experiment(name("owned"))
    run = owner_client.create_run(experiment_id)
    owner_client.log_metric(run.info.run_id, "m", 1.0)
    permission = admin_client.get_user_permission(owner, "experiment", experiment_id)
    assert permission.permission == "MANAGE" and permission.allowed is True

    as_user(monkeypatch, reader, USER_PASSWORD)
    reader_client = MlflowClient(auth_server.url, registry_uri=auth_server.url)
    assert reader_client.get_experiment(experiment_id).experiment_id == experiment_id
    assert reader_client.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    with pytest.raises(MlflowException) as denied:
        reader_client.log_metric(run.info.run_id, "m", 2.0)
    assert "403" in str(denied.value) or "Permission denied" in str(denied.value)
    with pytest.raises(MlflowException):
        reader_client.set_experiment_tag(experiment_id, "k", "v")
    with pytest.raises(MlflowException):
        reader_client.delete_experiment(experiment_id)
    reader_permission = admin_client.get_user_permission(reader, "experiment", experiment_id)
    assert reader_permission.permission == "READ" and reader_permission.allowed is False


def test_grant_and_revoke_a_user_permission(auth_server, admin_client, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException, RestException

    editor = name("editor")
    admin_client.create_user(editor, USER_PASSWORD)
    as_user(monkeypatch, ADMIN, ADMIN_PASSWORD)
    experiment_id = MlflowClient(auth_server.url, registry_uri=auth_server.url).create_experiment(name("granted"))

    admin_client.grant_user_permission(editor, "experiment", experiment_id, "EDIT")
    with pytest.raises(RestException) as again:
        admin_client.grant_user_permission(editor, "experiment", experiment_id, "EDIT")
    assert again.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(RestException) as bad_level:
        admin_client.grant_user_permission(editor, "experiment", experiment_id, "ALL")
    assert bad_level.value.error_code == "INVALID_PARAMETER_VALUE"
    assert admin_client.get_user_permission(editor, "experiment", experiment_id).permission == "EDIT"

    as_user(monkeypatch, editor, USER_PASSWORD)
    editor_client = MlflowClient(auth_server.url, registry_uri=auth_server.url)
    editor_client.set_experiment_tag(experiment_id, "owner", "editor")
    run = editor_client.create_run(experiment_id)
    editor_client.log_param(run.info.run_id, "p", "1")
    with pytest.raises(MlflowException):
        editor_client.delete_experiment(experiment_id)  # EDIT cannot delete

    as_user(monkeypatch, ADMIN, ADMIN_PASSWORD)
    admin_client.revoke_user_permission(editor, "experiment", experiment_id)
    with pytest.raises(RestException) as gone:
        admin_client.revoke_user_permission(editor, "experiment", experiment_id)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    as_user(monkeypatch, editor, USER_PASSWORD)
    with pytest.raises(MlflowException):
        MlflowClient(auth_server.url, registry_uri=auth_server.url).log_param(run.info.run_id, "q", "2")


def test_roles_grant_permissions_to_their_users(auth_server, admin_client, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import RestException

    member = name("member")
    admin_client.create_user(member, USER_PASSWORD)
    as_user(monkeypatch, ADMIN, ADMIN_PASSWORD)
    experiment_id = MlflowClient(auth_server.url, registry_uri=auth_server.url).create_experiment(name("role-exp"))

    role = admin_client.create_role("default", name("writers"), description="can write")
    assert role.workspace == "default" and role.description == "can write" and role.permissions == []
    with pytest.raises(RestException) as reserved:
        admin_client.create_role("default", "__user_99__")
    assert reserved.value.error_code == "INVALID_PARAMETER_VALUE"
    granted = admin_client.add_role_permission(role.id, "experiment", experiment_id, "EDIT")
    assert (granted.role_id, granted.resource_type, granted.resource_pattern, granted.permission) \
        == (role.id, "experiment", experiment_id, "EDIT")
    with pytest.raises(RestException) as per_id_run:
        admin_client.add_role_permission(role.id, "run", "abc", "READ")
    assert per_id_run.value.error_code == "INVALID_PARAMETER_VALUE"
    assignment = admin_client.assign_role(member, role.id)
    assert assignment.role_id == role.id
    assert [r.id for r in admin_client.list_user_roles(member)] == [role.id]
    assert [a.role_id for a in admin_client.list_role_users(role.id)] == [role.id]
    assert [p.id for p in admin_client.list_role_permissions(role.id)] == [granted.id]
    assert role.id in [r.id for r in admin_client.list_roles("default")]
    fetched = admin_client.get_role(role.id)
    assert [p.permission for p in fetched.permissions] == ["EDIT"]
    renamed = admin_client.update_role(role.id, description="edited")
    assert renamed.description == "edited" and renamed.name == role.name

    as_user(monkeypatch, member, USER_PASSWORD)
    MlflowClient(auth_server.url, registry_uri=auth_server.url).set_experiment_tag(experiment_id, "by", "role")

    as_user(monkeypatch, ADMIN, ADMIN_PASSWORD)
    updated = admin_client.update_role_permission(granted.id, "READ")
    assert updated.permission == "READ"
    as_user(monkeypatch, member, USER_PASSWORD)
    denied = requests.post(f"{auth_server.url}/api/2.0/mlflow/experiments/set-experiment-tag",
                           json={"experiment_id": experiment_id, "key": "by", "value": "x"},
                           headers=basic(member, USER_PASSWORD), timeout=10)
    assert denied.status_code == 403

    as_user(monkeypatch, ADMIN, ADMIN_PASSWORD)
    admin_client.remove_role_permission(granted.id)
    assert admin_client.list_role_permissions(role.id) == []
    admin_client.unassign_role(member, role.id)
    assert admin_client.list_user_roles(member) == []
    admin_client.delete_role(role.id)
    with pytest.raises(RestException) as missing:
        admin_client.get_role(role.id)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_searches_hide_what_the_user_may_not_read(auth_server, admin_client, monkeypatch):
    from mlflow import MlflowClient

    viewer = name("viewer")
    admin_client.create_user(viewer, USER_PASSWORD)
    as_user(monkeypatch, ADMIN, ADMIN_PASSWORD)
    admin = MlflowClient(auth_server.url, registry_uri=auth_server.url)
    prefix = name("search")
    visible = admin.create_experiment(f"{prefix}-visible")
    hidden = admin.create_experiment(f"{prefix}-hidden")
    visible_model = admin.create_registered_model(f"{prefix}-visible-model").name
    hidden_model = admin.create_registered_model(f"{prefix}-hidden-model").name
    admin_client.grant_user_permission(viewer, "experiment", hidden, "DENY")
    admin_client.grant_user_permission(viewer, "registered_model", hidden_model, "DENY")

    as_user(monkeypatch, viewer, USER_PASSWORD)
    client = MlflowClient(auth_server.url, registry_uri=auth_server.url)
    found = {e.experiment_id for e in client.search_experiments(filter_string=f"name LIKE '{prefix}%'")}
    assert found == {visible}
    models = {m.name for m in client.search_registered_models(filter_string=f"name LIKE '{prefix}%'")}
    assert models == {visible_model}
    denied = requests.get(f"{auth_server.url}/api/2.0/mlflow/experiments/get",
                          params={"experiment_id": hidden}, headers=basic(viewer, USER_PASSWORD),
                          timeout=10)
    assert denied.status_code == 403 and denied.text == "Permission denied"

    as_user(monkeypatch, ADMIN, ADMIN_PASSWORD)
    all_found = {e.experiment_id for e in admin.search_experiments(filter_string=f"name LIKE '{prefix}%'")}
    assert all_found == {visible, hidden}


def test_missing_authorization_routes_refuse_read_only_users(auth_server, admin_client, monkeypatch):
    """Security case 12: OTLP ingest, trace and assessment routes, ajax aliases and artifact DELETE
    all need the right level; a default-READ user is refused writes."""
    from mlflow import MlflowClient

    reader = name("ro")
    admin_client.create_user(reader, USER_PASSWORD)
    editor = name("ed")
    admin_client.create_user(editor, USER_PASSWORD)
    as_user(monkeypatch, ADMIN, ADMIN_PASSWORD)
    admin = MlflowClient(auth_server.url, registry_uri=auth_server.url)
    experiment_id = admin.create_experiment(name("guarded"))
    run = admin.create_run(experiment_id)
    admin.log_text(run.info.run_id, "hello", "notes/a.txt")
    admin_client.grant_user_permission(editor, "experiment", experiment_id, "EDIT")
    url = auth_server.url
    ro = basic(reader, USER_PASSWORD)

    otlp = requests.post(f"{url}/v1/traces", data=b"",
                         headers={**ro, "Content-Type": "application/x-protobuf",
                                  "x-mlflow-experiment-id": experiment_id}, timeout=10)
    assert otlp.status_code == 403

    start = requests.post(f"{url}/api/3.0/mlflow/traces", headers=ro, timeout=10, json={
        "trace": {"trace_info": {
            "trace_id": "tr-" + uuid.uuid4().hex,
            "trace_location": {"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": experiment_id}},
            "request_time": "2024-01-01T00:00:00Z", "state": "OK"}}})
    assert start.status_code == 403
    deleted_traces = requests.post(f"{url}/api/2.0/mlflow/traces/delete-traces", headers=ro,
                                   json={"experiment_id": experiment_id, "max_traces": 10},
                                   timeout=10)
    assert deleted_traces.status_code == 403

    ajax = requests.post(f"{url}/ajax-api/2.0/mlflow/runs/log-parameter", headers=ro, timeout=10,
                         json={"run_id": run.info.run_id, "key": "k", "value": "v"})
    assert ajax.status_code == 403
    ajax_read = requests.get(f"{url}/ajax-api/2.0/mlflow/runs/get", headers=ro, timeout=10,
                             params={"run_id": run.info.run_id})
    assert ajax_read.status_code == 200

    artifact = f"{url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run.info.run_id}/artifacts/notes/a.txt"
    assert requests.get(artifact, headers=ro, timeout=10).text == "hello"
    assert requests.put(artifact, data=b"x", headers=ro, timeout=10).status_code == 403
    assert requests.delete(artifact, headers=ro, timeout=10).status_code == 403
    # EDIT may write artifacts but not delete them (MANAGE).
    ed = basic(editor, USER_PASSWORD)
    assert requests.delete(artifact, headers=ed, timeout=10).status_code == 403
    assert requests.get(artifact, headers=ed, timeout=10).status_code == 200


def test_search_pages_are_refilled_after_filtering(auth_server, admin_client):
    """A filtered search keeps reading until `max_results` readable items or the end (MLflow's
    filter_search_experiments / filter_search_registered_models): no page comes back short but the last,
    and paging with next_page_token reaches every readable item once."""
    viewer = name("pager")
    admin_client.create_user(viewer, USER_PASSWORD)
    admin_headers = basic(ADMIN, ADMIN_PASSWORD)
    prefix = name("page")
    url = f"{auth_server.url}/api/2.0/mlflow"
    experiments, models = [], []
    for index in range(6):
        created = requests.post(f"{url}/experiments/create", json={"name": f"{prefix}-{index}"},
                                headers=admin_headers, timeout=10)
        experiments.append(created.json()["experiment_id"])
        created = requests.post(f"{url}/registered-models/create", json={"name": f"{prefix}-m{index}"},
                                headers=admin_headers, timeout=10)
        models.append(created.json()["registered_model"]["name"])
    for index in (0, 1, 3):
        admin_client.grant_user_permission(viewer, "experiment", experiments[index], "DENY")
        admin_client.grant_user_permission(viewer, "registered_model", models[index], "DENY")

    def pages(path: str, key: str, identity: str) -> list[list[str]]:
        found, token = [], None
        for _ in range(10):
            body = {"filter": f"name LIKE '{prefix}%'", "max_results": 2}
            if token:
                body["page_token"] = token
            response = requests.get(f"{url}/{path}", params=body, headers=basic(viewer, USER_PASSWORD),
                                    timeout=10)
            assert response.status_code == 200, response.text
            answer = response.json()
            found.append([item[identity] for item in answer.get(key, [])])
            token = answer.get("next_page_token")
            if not token:
                return found
        raise AssertionError(f"no end after 10 pages: {found}")

    for path, key, identity, created in (
        ("experiments/search", "experiments", "experiment_id", experiments),
        ("registered-models/search", "registered_models", "name", models),
    ):
        found = pages(path, key, identity)
        assert len(found[0]) == 2, found
        full = [page for page in found if page]
        assert all(len(page) == 2 for page in full[:-1]), found
        flat = [item for page in found for item in page]
        assert sorted(flat) == sorted(created[index] for index in (2, 4, 5)), found


def test_signup_form_creates_a_user_and_needs_its_csrf_token(auth_server, admin_client, new_user):
    """MLflow's /signup page: a form posting to users/create-ui with a CSRF token; the post is refused
    without the token and creates the user with it. Users who may not create users get no form."""
    url = auth_server.url
    session = requests.Session()
    session.headers.update(basic(ADMIN, ADMIN_PASSWORD))
    page = session.get(f"{url}/signup", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert '<form action="/api/2.0/mlflow/users/create-ui" method="post">' in page.text
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert token
    assert 'name="username"' in page.text and 'name="password"' in page.text
    assert "<script" not in page.text.split("<form", 1)[1]

    username = name("signed")
    form = {"username": username, "password": USER_PASSWORD}
    missing = session.post(f"{url}/api/2.0/mlflow/users/create-ui", data=form, timeout=10)
    assert missing.status_code == 400 and "CSRF token is missing" in missing.text
    forged = session.post(f"{url}/api/2.0/mlflow/users/create-ui",
                          data={**form, "csrf_token": token[:-4] + "0000"}, timeout=10)
    assert forged.status_code == 400 and "CSRF token" in forged.text
    created = session.post(f"{url}/api/2.0/mlflow/users/create-ui", data={**form, "csrf_token": token},
                           timeout=10)
    assert created.status_code == 200, created.text
    assert f"Successfully signed up user: {username}" in created.text
    assert admin_client.get_user(username).username == username
    again = session.post(f"{url}/api/2.0/mlflow/users/create-ui", data={**form, "csrf_token": token},
                         timeout=10)
    assert again.status_code == 200 and f"Username has already been taken: {username}" in again.text

    refused = requests.get(f"{url}/signup", headers=basic(new_user, USER_PASSWORD), timeout=10)
    assert refused.status_code == 403


@pytest.fixture(scope="module", params=cs.requested_servers())
def postgres_auth_server(request, tmp_path_factory):
    """A server of each kind with its auth database on PostgreSQL. ferroflow is given a database that
    MLflow's own auth migrations made (served as is); mlflow a fresh one (it migrates it itself)."""
    kind = request.param
    problem = cs.backend_problem("postgres")
    if problem:
        if cs.in_ci():
            pytest.fail(problem)
        pytest.skip(problem)
    workdir = tmp_path_factory.mktemp(f"{kind}-pg-auth")
    database = cs.Database("postgres", workdir).create()
    try:
        uri = database.uri("mlflow")
        if kind == "ferroflow":
            import sqlalchemy
            from mlflow.server.auth.db import utils

            engine = sqlalchemy.create_engine(uri)
            utils.migrate(engine, "head")
            engine.dispose()
            uri = database.uri("ferroflow")
        yield from start_auth_server(kind, workdir, uri)
        assert database.execute("SELECT version_num FROM alembic_version_auth") == [("f1a2b3c4d5e6",)]
    finally:
        database.drop()


def test_auth_database_on_postgres(postgres_auth_server, monkeypatch):
    import mlflow.server

    as_user(monkeypatch, ADMIN, ADMIN_PASSWORD)
    client = mlflow.server.get_app_client("basic-auth", tracking_uri=postgres_auth_server.url)
    username = name("pg")
    user = client.create_user(username, USER_PASSWORD)
    assert user.id > 1 and client.get_user(username).id == user.id
    experiment = requests.post(f"{postgres_auth_server.url}/api/2.0/mlflow/experiments/create",
                               json={"name": name("pg-exp")}, headers=basic(ADMIN, ADMIN_PASSWORD),
                               timeout=10).json()["experiment_id"]
    client.grant_user_permission(username, "experiment", experiment, "DENY")
    denied = requests.get(f"{postgres_auth_server.url}/api/2.0/mlflow/experiments/get",
                          params={"experiment_id": experiment}, headers=basic(username, USER_PASSWORD),
                          timeout=10)
    assert denied.status_code == 403
    client.delete_user(username)
    gone = requests.get(f"{postgres_auth_server.url}/version", headers=basic(username, USER_PASSWORD),
                        timeout=10)
    assert gone.status_code == 401
