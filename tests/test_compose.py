"""docker-compose.yml: valid Compose, real `portalpay` commands, real settings, our search attributes.

Docker is not needed: the file is checked against the Compose Specification JSON schema
(vendored in tests/data/compose-spec.json from compose-spec/compose-spec, schema/compose-spec.json),
which is shown to refuse broken variants of this very file, and against the code it deploys: its
commands are parsed by the real `portalpay` Typer app, its variables by the real settings.
"""

import base64
import copy
import json
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer.main
import yaml

from infra.settings import OWN_SECRETS, PORTAL_SECRETS, PROCESSOR_SECRETS, WORKER_SECRETS, Settings
from starters.cli.app import app as portalpay_app

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"

# Variables the third-party images read (their documented configuration).
POSTGRES_IMAGE_VARS = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "PGDATA", "POSTGRES_INITDB_ARGS"}
TEMPORAL_SERVER_VARS = {
    "DB",
    "DB_PORT",
    "DBNAME",
    "VISIBILITY_DBNAME",
    "POSTGRES_SEEDS",
    "POSTGRES_USER",
    "POSTGRES_PWD",
    "BIND_ON_IP",
    "TEMPORAL_BROADCAST_ADDRESS",
    "DYNAMIC_CONFIG_FILE_PATH",
    "NUM_HISTORY_SHARDS",
    "LOG_LEVEL",
    "PROMETHEUS_ENDPOINT",
    "SQL_MAX_CONNS",
    "SQL_MAX_IDLE_CONNS",
}
TEMPORAL_UI_VARS = {
    "TEMPORAL_ADDRESS",
    "TEMPORAL_UI_PORT",
    "TEMPORAL_DEFAULT_NAMESPACE",
    "TEMPORAL_CORS_ORIGINS",
    "TEMPORAL_CODEC_ENDPOINT",
    "TEMPORAL_CODEC_PASS_ACCESS_TOKEN",
    "TEMPORAL_CODEC_INCLUDE_CREDENTIALS",
}

_VAR = re.compile(
    r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}|(?P<bare>[A-Za-z_]\w*))"
)


class MissingVariable(Exception):
    pass


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        present = name in env
        value = env.get(name, "")
        if op in (":-", "-"):
            use_default = not value if op == ":-" else not present
            return arg if use_default else value
        if op in (":?", "?"):
            if (op == ":?" and not value) or not present:
                raise MissingVariable(f"{name}: {arg}")
            return value
        return value

    return _VAR.sub(one, value)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(item, env) for key, item in node.items()}
    return node


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def filled_env_example() -> dict[str, str]:
    """.env.example with its empty (required) values filled the way its comments say."""
    env = read_env_file(ENV_EXAMPLE)
    for key, value in env.items():
        if value:
            continue
        if key in ("CODEC_KEYS", "WEBHOOK_SECRET_KEYS"):
            env[key] = "k1:" + base64.b64encode(secrets.token_bytes(32)).decode()
        else:
            env[key] = secrets.token_urlsafe(32)
    return env


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def resolved(compose: dict[str, Any]) -> dict[str, Any]:
    tree = interpolate_tree(compose, filled_env_example())
    assert isinstance(tree, dict)
    return tree


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def app_services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def image_services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if "build" not in svc}


def cli_commands() -> dict[tuple[str, ...], Any]:
    """Every leaf command of the `portalpay` Typer app, by its path."""
    leaves: dict[tuple[str, ...], Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            leaves[path] = command
            return
        for name, sub in subcommands.items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(portalpay_app), ())
    return leaves


# --- the file itself ----------------------------------------------------------------------


def _breakages(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Variants of our file with one mistake each that `docker compose config` refuses."""
    broken: dict[str, dict[str, Any]] = {}
    typo = copy.deepcopy(compose)
    typo["services"]["portal"]["enviroment"] = typo["services"]["portal"].pop("environment")
    broken["misspelt key"] = typo
    ports = copy.deepcopy(compose)
    ports["services"]["portal"]["ports"] = "8000:8000"
    broken["ports not a list"] = ports
    condition = copy.deepcopy(compose)
    condition["services"]["worker"]["depends_on"]["temporal-namespace"]["condition"] = "service_finished"
    broken["unknown depends_on condition"] = condition
    unknown_top = copy.deepcopy(compose)
    unknown_top["service"] = unknown_top["services"]
    broken["unknown top-level key"] = unknown_top
    return broken


def test_the_schema_refuses_broken_variants_of_our_file(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    for mistake, variant in _breakages(compose).items():
        assert list(validator.iter_errors(variant)), f"the schema let a {mistake} through"


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_compose_file_still_valid_after_interpolation(resolved: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(resolved, schema, cls=jsonschema.Draft7Validator)


def test_required_variables_are_all_in_env_example(compose: dict[str, Any]) -> None:
    required = set(re.findall(r"\$\{([A-Za-z_]\w*):?\?", COMPOSE_FILE.read_text()))
    assert required >= {
        "STAFF_API_TOKEN",
        "OPERATOR_API_TOKEN",
        "LINK_SIGNING_KEY",
        "OTP_HMAC_KEY",
        "AUDIT_CHAIN_KEY",
        "CODEC_KEYS",
    }
    assert required <= set(read_env_file(ENV_EXAMPLE))
    # Unfilled, the example is refused: nobody deploys with placeholder secrets.
    with pytest.raises(MissingVariable):
        interpolate_tree(compose, read_env_file(ENV_EXAMPLE))


def test_depends_on_names_real_services(compose: dict[str, Any]) -> None:
    names = set(compose["services"])
    for name, svc in compose["services"].items():
        assert set(svc.get("depends_on") or {}) <= names, name


# --- the app services ---------------------------------------------------------------------


def test_app_services_are_the_expected_ones(compose: dict[str, Any]) -> None:
    assert {"migrate", "worker", "portal"} <= set(app_services(compose))


@pytest.mark.parametrize("name", ["migrate", "demo-seed", "worker", "portal"])
def test_app_command_is_a_real_portalpay_command(compose: dict[str, Any], name: str) -> None:
    command = app_services(compose)[name]["command"]
    assert isinstance(command, list) and all(isinstance(part, str) for part in command)
    leaves = cli_commands()
    matches = [path for path in leaves if tuple(command[: len(path)]) == path]
    assert matches, f"{command} is not a portalpay command; known: {sorted(leaves)}"
    path = max(matches, key=len)
    # Parsing the arguments (without running) catches unknown options and bad values.
    leaves[path].make_context(" ".join(("portalpay", *path)), list(command[len(path) :]))


def test_expected_commands(compose: dict[str, Any]) -> None:
    services = app_services(compose)
    assert services["migrate"]["command"] == ["db", "migrate"]
    assert services["worker"]["command"] == ["worker"]
    assert services["portal"]["command"] == ["portal", "--host", "0.0.0.0", "--port", "8000"]


@pytest.mark.parametrize("name", ["migrate", "demo-seed", "worker", "portal"])
def test_app_environment_names_are_settings_fields(compose: dict[str, Any], name: str) -> None:
    fields = {field.upper() for field in Settings.model_fields}
    unknown = set(environment_of(app_services(compose)[name])) - fields
    assert not unknown, f"{name} sets variables no setting reads: {sorted(unknown)}"


PROCESS_SECRETS = {"worker": WORKER_SECRETS, "portal": PORTAL_SECRETS, "processor": PROCESSOR_SECRETS}


@pytest.mark.parametrize("name", ["worker", "portal", "processor"])
def test_app_environment_makes_valid_prod_settings(compose: dict[str, Any], name: str) -> None:
    env_values = filled_env_example() | {
        "PORTAL_PUBLIC_URL": "https://pay.example.com",
        "TEMPORAL_UI_PUBLIC_URL": "https://temporal.example.com",
    }
    tree = interpolate_tree(compose, env_values)
    env = environment_of(tree["services"][name])
    settings = Settings(_env_file=None, **{key.lower(): value for key, value in env.items()})  # type: ignore[arg-type]
    assert settings.portalpay_env == "prod"
    needs = PROCESS_SECRETS[name]
    if name != "processor":  # the sandbox stands in for a processor; only ours check at start
        # What the process itself checks at start (workers/process.py, starters/portal/process.py).
        settings.refuse_unsafe_prod(needs)
    for secret in needs:
        assert settings.secret(secret)
    assert settings.database_url and settings.database_url.startswith("postgresql://portalpay_app:")
    if name != "processor":
        assert settings.codec_key_ring()
        assert settings.temporal_address == "temporal:7233"


def test_migrate_gets_the_owner_connection_and_no_app_secret(resolved: dict[str, Any]) -> None:
    env = environment_of(resolved["services"]["migrate"])
    settings = Settings(_env_file=None, **{key.lower(): value for key, value in env.items()})  # type: ignore[arg-type]
    assert settings.database_migration_url and settings.database_migration_url.startswith(
        "postgresql://portalpay:"
    )
    assert settings.database_app_password is not None
    assert all(getattr(settings, name) is None for name in (*OWN_SECRETS, "codec_keys"))


# --- least privilege (issue 21): secrets and networks --------------------------------------

# Who may hold each secret of .env.example: the services that read it, and no other.
SECRET_HOLDERS = {
    "APP_DB_PASSWORD": {"postgres", "migrate"},
    "APP_ROLE_DB_PASSWORD": {"migrate", "demo-seed", "worker", "processor", "portal"},
    "TEMPORAL_DB_PASSWORD": {"temporal-postgresql", "temporal-schema", "temporal"},
    "STAFF_API_TOKEN": {"portal"},
    "OPERATOR_API_TOKEN": {"portal"},
    "LINK_SIGNING_KEY": {"portal"},
    "OTP_HMAC_KEY": {"worker"},
    "BANK_FINGERPRINT_KEY": {"worker"},
    "AUDIT_CHAIN_KEY": {"worker", "portal"},
    "CODEC_KEYS": {"worker", "portal"},
    "PROCESSOR_WEBHOOK_SECRET": {"portal", "processor"},
    "NACHA_ACCOUNT_KEY": {"worker"},
    "API_KEY_PEPPER": {"portal"},
    "WEBHOOK_SECRET_KEYS": {"worker", "portal"},
}


def test_every_secret_of_the_env_example_has_its_holders_listed() -> None:
    required = set(re.findall(r"\$\{([A-Za-z_]\w*):\?", COMPOSE_FILE.read_text()))
    assert required == set(SECRET_HOLDERS)


def test_no_container_gets_the_whole_env_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        files = service.get("env_file") or []
        paths = [files] if isinstance(files, str) else [f if isinstance(f, str) else f["path"] for f in files]
        assert not any(Path(path).name == ".env" for path in paths), name
        # app.env is for settings that are not secrets.
    assert "app.env" in (ROOT / ".gitignore").read_text().split()


def test_each_secret_reaches_only_the_services_that_read_it(compose: dict[str, Any]) -> None:
    env = filled_env_example()
    tree = interpolate_tree(compose, env)
    for secret, holders in SECRET_HOLDERS.items():
        value = env[secret]
        holding = {
            name
            for name, service in tree["services"].items()
            if value in json.dumps(service.get("environment"))
        }
        assert holding == holders, f"{secret} reaches {sorted(holding)}, not only {sorted(holders)}"


@pytest.mark.parametrize("name", sorted(PROCESS_SECRETS))
def test_each_app_process_gets_exactly_the_secrets_it_reads(compose: dict[str, Any], name: str) -> None:
    given = {key.lower() for key in environment_of(compose["services"][name])}
    own = {secret for secret in (*OWN_SECRETS, "codec_keys", "webhook_secret_keys") if secret in given}
    assert own == set(PROCESS_SECRETS[name])


def _reachable_from(compose: Mapping[str, Any], name: str) -> set[str]:
    nets = set(compose["services"][name]["networks"])
    return {
        other
        for other, service in compose["services"].items()
        if other != name and nets & set(service.get("networks") or [])
    }


def test_every_service_names_its_networks_and_only_the_edges_leave_the_host(compose: dict[str, Any]) -> None:
    declared = compose["networks"]
    for name, service in compose["services"].items():
        assert service.get("networks"), f"{name} would join the default network, shared by everything"
        assert set(service["networks"]) <= set(declared), name
    outward = {net for net, spec in declared.items() if not (spec or {}).get("internal")}
    assert outward == {"edge", "ui-edge"}
    on_edge = {name for name, service in compose["services"].items() if set(service["networks"]) & outward}
    assert on_edge == {"portal", "worker", "ui-proxy"}


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("postgres", {"migrate", "demo-seed", "worker", "portal", "processor"}),
        ("temporal-postgresql", {"temporal", "temporal-schema"}),
        ("processor", {"worker", "portal", "postgres"}),
        (
            "temporal",
            {
                "temporal-namespace",
                "temporal-ui",
                "worker",
                "portal",
                "temporal-postgresql",
                "temporal-schema",
            },
        ),
        ("temporal-ui", {"ui-proxy", "temporal", "temporal-namespace", "worker", "portal"}),
    ],
)
def test_databases_processor_and_temporal_are_reachable_only_by_what_needs_them(
    compose: dict[str, Any], target: str, allowed: set[str]
) -> None:
    assert _reachable_from(compose, target) <= allowed


def test_the_sandbox_processor_and_the_databases_are_not_reachable_by_the_ui(compose: dict[str, Any]) -> None:
    for private in ("postgres", "temporal-postgresql", "processor"):
        reachable = _reachable_from(compose, private)
        assert not reachable & {"ui-proxy", "temporal-ui"}, private
    assert "processor" not in _reachable_from(compose, "migrate")


def test_worker_stops_slower_than_its_graceful_shutdown(compose: dict[str, Any]) -> None:
    worker = app_services(compose)["worker"]
    grace = worker["stop_grace_period"]
    assert grace.endswith("s")
    assert int(grace[:-1]) > Settings.model_fields["worker_graceful_shutdown_seconds"].default
    # Scaling out (`--scale worker=N`) needs no fixed name and no published port.
    assert "container_name" not in worker and "ports" not in worker


# --- the images around it -----------------------------------------------------------------


def test_no_deprecated_auto_setup_image(compose: dict[str, Any]) -> None:
    for svc in compose["services"].values():
        assert "auto-setup" not in str(svc.get("image", ""))


def test_image_service_environment_is_what_the_image_reads(compose: dict[str, Any]) -> None:
    for name, svc in image_services(compose).items():
        image = str(svc["image"])
        env = set(environment_of(svc))
        if image.startswith("postgres:"):
            allowed = POSTGRES_IMAGE_VARS
        elif "temporalio/server" in image or image == compose["x-temporal-versions"]["server"]:
            allowed = TEMPORAL_SERVER_VARS
        elif "temporalio/ui" in image or image == compose["x-temporal-versions"]["ui"]:
            allowed = TEMPORAL_UI_VARS
        elif image.startswith("nginx:"):
            allowed = set()  # configured by its mounted file only (deploy/ui-proxy/nginx.conf)
        elif "admin-tools" in image or image == compose["x-temporal-versions"]["admin-tools"]:
            # Admin-tools jobs run our scripts: every variable they get must be read by the script.
            script = ROOT / "deploy" / "temporal" / Path(svc["command"][-1]).name
            text = script.read_text()
            allowed = {var for var in env if re.search(r"\$\{?" + var + r"\b", text)}
        else:
            pytest.fail(f"{name}: unknown image {image}")
        assert env <= allowed, f"{name} sets {sorted(env - allowed)}"


def test_temporal_runs_on_postgresql_with_schema_and_namespace_jobs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    server = services["temporal"]
    assert environment_of(server)["DB"] == "postgres12"
    assert server["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert services["temporal-namespace"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    for job in ("temporal-schema", "temporal-namespace"):
        script = ROOT / "deploy" / "temporal" / Path(services[job]["command"][-1]).name
        assert script.is_file(), script
    dynamic = ROOT / "deploy" / "temporal" / "dynamicconfig.yaml"
    assert isinstance(yaml.safe_load(dynamic.read_text()), dict)
    for app in ("worker", "portal"):
        assert (
            services[app]["depends_on"]["temporal-namespace"]["condition"] == "service_completed_successfully"
        )


def test_namespace_job_registers_exactly_our_search_attributes() -> None:
    from workflows.search_attributes import ALL_KEYS

    script = (ROOT / "deploy" / "temporal" / "setup-namespace.sh").read_text()
    registered = dict(
        re.findall(r"\b([A-Z]\w+):(Keyword|Int|Text|Bool|Double|Datetime|KeywordList)\b", script)
    )
    expected = {key.name: key.indexed_value_type.name.title().replace("_", "") for key in ALL_KEYS}
    assert registered == expected


def test_ui_decodes_through_the_portal_codec(resolved: dict[str, Any]) -> None:
    # The UI is reached through ui-proxy, whose /codec goes to the portal: the codec endpoint is
    # the UI's own public origin (see tests/hostile/test_compose_exposure.py for the proxy).
    ui = environment_of(resolved["services"]["temporal-ui"])
    portal = environment_of(resolved["services"]["portal"])
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == portal["CODEC_CORS_ORIGINS"].rstrip("/") + "/codec"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    published = resolved["services"]["ui-proxy"]["ports"][0].rsplit(":", 2)
    assert portal["CODEC_CORS_ORIGINS"] == f"http://localhost:{published[-2]}"


# --- the image we build -------------------------------------------------------------------


def test_dockerfile_installs_the_package_and_runs_portalpay() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    # The shipped pins first, then the package without resolving anything again.
    assert re.search(r"^RUN pip install -r requirements-prod\.lock$", text, re.MULTILINE)
    assert re.search(r"^RUN pip install --no-deps \.", text, re.MULTILINE)
    assert 'ENTRYPOINT ["portalpay"]' in text
    copied = set(re.findall(r"^COPY (\S+?)/? ", text, re.MULTILINE))
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"include = \[([^\]]*)\]", pyproject)
    assert include is not None
    packages = {name.strip().strip('"').rstrip("*") for name in include.group(1).split(",")}
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
    assert ".env" in (ROOT / ".dockerignore").read_text().split()
