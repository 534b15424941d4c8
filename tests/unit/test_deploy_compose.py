"""docker-compose.yml, the Dockerfile and deploy/, checked statically: no Docker engine
runs here, so nothing in this file starts a container. What it can check, it checks
against the real thing: the Compose specification's JSON schema, the real CLI's
parser, the settings the code really reads, the README as written."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import re
import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer.main
import yaml

from stratlab.cli.main import app
from stratlab.config import Settings, _env_name
from stratlab.runtime import search_attribute_flags
from workflows.constants import POOLS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
README = (ROOT / "README.md").read_text()

ONE_SHOTS = ("temporal-schema", "temporal-namespace", "setup")
OBSERVABILITY = ("prometheus", "grafana", "otel-collector", "jaeger")
LANGFUSE = ("langfuse-web", "langfuse-worker", "langfuse-postgres", "clickhouse", "redis", "minio")
# ${NAME}, ${NAME:-default} or ${NAME-default}
VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def compose_schema() -> dict[str, Any]:
    """The Compose specification's schema, as vendored by check-jsonschema."""
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return dict(json.loads((vendor / "compose-spec.json").read_text()))


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def interpolate(value: str) -> str:
    """What compose makes of a value when no variable is set: each default."""
    return VARIABLE.sub(lambda m: m.group(2) or "", value)


def stratlab_services() -> dict[str, dict[str, Any]]:
    """Services built from the project's Dockerfile."""
    return {
        name: svc
        for name, svc in SERVICES.items()
        if isinstance(svc.get("build"), dict) and svc["build"].get("context") == "."
    }


def dockerfile_instructions(keyword: str) -> list[str]:
    """Arguments of each ``keyword`` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines()]
    return [line[len(keyword) + 1 :].strip() for line in lines if line.startswith(keyword + " ")]


def parse_cli(args: list[str]) -> str:
    """Resolve and parse ``stratlab <args>`` with the real click command tree, without
    running it; returns the resolved command path. A bad command or option raises."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("stratlab", [], resilient_parsing=True)  # no global options
    path, rest = ["stratlab"], list(args)
    while hasattr(command, "resolve_command"):  # a group: descend to the subcommand
        wanted = rest[0] if rest else ""
        name, command, rest = command.resolve_command(ctx, rest)
        if command is None:
            raise LookupError(f"stratlab has no command {wanted!r}")
        path.append(str(name))
        ctx = command.make_context(str(name), list(rest), parent=ctx)
        rest = list(ctx.args)
    return " ".join(path)


# ---- the file itself ------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification() -> None:
    assert schema_errors(COMPOSE) == []


def test_the_schema_check_rejects_what_the_specification_forbids() -> None:
    """The validator is live: a misspelled key and a wrong type are both reported."""
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["compute"]["restart_policy"] = "always"
    broken["services"]["llm"]["depends_on"] = 5
    errors = schema_errors(broken)
    assert any("restart_policy" in e for e in errors), errors
    assert any(e.startswith("services/llm/depends_on") for e in errors), errors


def test_every_bind_mount_and_build_context_exists_in_the_repository() -> None:
    for name, svc in SERVICES.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        build = svc.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name


# ---- the pools and the CLI -------------------------------------------------------------


def test_every_pool_has_a_worker_service_that_can_be_scaled() -> None:
    workers = {
        name: svc for name, svc in stratlab_services().items() if svc["command"][0] == "worker"
    }
    assert sorted(workers) == sorted(POOLS)
    for pool, svc in workers.items():
        assert svc["command"] == ["worker", pool]
        # --scale needs replicas that do not clash: no fixed name, no published port.
        assert "container_name" not in svc and "ports" not in svc, pool
        assert svc["restart"] == "unless-stopped", pool
        assert svc["depends_on"] == {"setup": {"condition": "service_completed_successfully"}}
        assert svc["healthcheck"]["test"] == ["CMD", "python", "-m", "workers.health"]
        url = interpolate(svc["environment"]["DATABASE_URL"])
        assert url.startswith("postgresql://stratlab_app:"), (pool, url)


def test_every_stratlab_command_is_a_real_entry_point() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["stratlab"] == "stratlab.cli.main:main"
    assert dockerfile_instructions("ENTRYPOINT") == ['["stratlab"]']
    commands = {name: svc["command"] for name, svc in stratlab_services().items()}
    commands["Dockerfile CMD"] = json.loads(dockerfile_instructions("CMD")[-1])
    resolved = {name: parse_cli([interpolate(a) for a in args]) for name, args in commands.items()}
    assert resolved == {
        "setup": "stratlab setup",
        **{pool: "stratlab worker" for pool in POOLS},
        "Dockerfile CMD": "stratlab worker",
    }


def test_the_cli_parser_used_above_rejects_a_bad_command() -> None:
    with pytest.raises(Exception, match="no-such-command"):
        parse_cli(["no-such-command"])
    with pytest.raises(Exception, match="less than or equal to 23"):
        parse_cli(["setup", "--nightly-hour=25"])


def test_the_workers_connect_as_the_role_that_setup_creates() -> None:
    setup = SERVICES["setup"]
    role_flag = next(a for a in setup["command"] if a.startswith("--app-role="))
    role = interpolate(role_flag.split("=", 1)[1])
    admin_url = interpolate(setup["environment"]["DATABASE_URL"])
    admin = admin_url.removeprefix("postgresql://").split(":", 1)[0]
    assert role == "stratlab_app" and admin != role
    for pool in POOLS:
        url = interpolate(SERVICES[pool]["environment"]["DATABASE_URL"])
        assert url.removeprefix("postgresql://").split(":", 1)[0] == role
        password = url.split(":", 2)[2].split("@", 1)[0]
        assert password == interpolate(setup["environment"]["STRATLAB_APP_DB_PASSWORD"])


# ---- configuration -----------------------------------------------------------------------


def settings_variables() -> set[str]:
    names = (_env_name(f.description) for f in Settings.model_fields.values())
    return {n for n in names if n}


def variables_read_in_code() -> set[str]:
    """Every environment variable the lab's code reads by name: Settings, plus any
    ``os.environ[...]``, ``os.environ.get(...)``, ``setdefault(...)`` or ``os.getenv(...)``
    with a literal name anywhere in the packages the image installs."""
    found = settings_variables()
    for package in ("stratlab", "workflows", "activities", "workers", "optimizer"):
        for path in (ROOT / package).rglob("*.py"):
            found |= set(_literal_env_reads(ast.parse(path.read_text())))
    return found


def _literal_env_reads(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            func = ast.unparse(node.func)
            if func in ("os.getenv", "os.environ.get", "os.environ.setdefault", "environ.get"):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            yield key.value


def readme_defaults() -> dict[str, str]:
    """Every variable of a README table row, with the default its row gives."""
    defaults: dict[str, str] = {}
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`(\w+)`", cells[0])
        values = [v.strip() for v in cells[1].split(" / ")]
        for i, name in enumerate(names):
            defaults[name] = values[i] if len(values) == len(names) else cells[1]
    return defaults


def compose_environment() -> set[str]:
    """Variables every stratlab container gets from compose or the image."""
    shared = set(COMPOSE["x-stratlab-env"])
    image = {
        pair.split("=", 1)[0]
        for env in dockerfile_instructions("ENV")
        for pair in env.split()
        if "=" in pair
    }
    return shared | image


def test_every_variable_the_code_reads_is_set_in_compose_or_documented_with_a_default() -> None:
    read = variables_read_in_code()
    assert {"DATABASE_URL", "NUMBA_CACHE_DIR", "STRATLAB_METRICS_PORT"} <= read  # the scan works
    documented = {name for name, default in readme_defaults().items() if default}
    missing = sorted(read - compose_environment() - documented)
    assert missing == []


def test_every_variable_compose_uses_is_documented_with_the_default_it_has() -> None:
    defaults = readme_defaults()
    wrong = []
    for name, default in sorted(set(VARIABLE.findall(COMPOSE_TEXT))):
        if name in settings_variables() and not default:
            continue  # a lab setting passed through: the configuration table has it
        shown = defaults.get(name)
        if shown is None or shown.strip("`") != (default or "empty"):
            wrong.append((name, default, shown))
    assert wrong == []


def test_secrets_stay_out_of_git_and_out_of_the_image() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()


# ---- Temporal --------------------------------------------------------------------------


def namespace_script_attributes() -> list[tuple[str, str]]:
    script = (ROOT / "deploy/temporal/namespace.sh").read_text()
    block = script.split('SEARCH_ATTRIBUTES="', 1)[1].split('"', 1)[0]
    return [tuple(line.split()) for line in block.strip().splitlines()]  # type: ignore[misc]


def test_the_admin_setup_registers_exactly_the_search_attributes_the_workflows_use() -> None:
    flags = search_attribute_flags()  # the dev server's flags, made from SEARCH_ATTRIBUTES
    expected = [tuple(flag.split("=")) for flag in flags[1::2]]
    assert namespace_script_attributes() == expected


def test_temporal_starts_after_its_schema_and_the_lab_after_its_namespace() -> None:
    def waits_for(service: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in SERVICES[service].get("depends_on", {}).items()}

    assert waits_for("temporal") == {"temporal-schema": "service_completed_successfully"}
    assert waits_for("temporal-namespace") == {"temporal": "service_healthy"}
    assert waits_for("setup") == {
        "postgres": "service_healthy",
        "temporal-namespace": "service_completed_successfully",
    }
    for one_shot in ONE_SHOTS:
        assert SERVICES[one_shot]["restart"].startswith("on-failure"), one_shot
    server, admin = SERVICES["temporal"]["image"], SERVICES["temporal-schema"]["image"]
    # The admin-tools release migrates to the schema its server expects: same version.
    assert server.split(":", 1)[1] == admin.split(":", 1)[1]
    assert "auto-setup" not in COMPOSE_TEXT.replace("auto-setup image", "")


def startable_errors(services: dict[str, dict[str, Any]]) -> list[str]:
    """Why `docker compose up` could not start these services in some order: a
    service_healthy target without a healthcheck, a service_completed_successfully target
    that is not a one-shot, a core service waiting on a profiled one, a cycle."""
    errors = []
    for name, svc in services.items():
        for target, spec in svc.get("depends_on", {}).items():
            other = services.get(target)
            if other is None:
                errors.append(f"{name} waits on undefined {target}")
                continue
            check = other.get("healthcheck", {})
            if spec["condition"] == "service_healthy" and (
                not check.get("test") or check.get("disable")
            ):
                errors.append(f"{name} waits for {target} to be healthy: no healthcheck")
            if spec["condition"] == "service_completed_successfully" and target not in ONE_SHOTS:
                errors.append(f"{name} waits for long-running {target} to complete")
            if "profiles" not in svc and "profiles" in other:
                errors.append(f"{name} (always on) waits on {target} (profile only)")
    order: set[str] = set()
    pending = {n: s for n, s in services.items() if "profiles" not in s}
    while pending:
        ready = [n for n, s in pending.items() if set(s.get("depends_on", {})) <= order]
        if not ready:
            errors.append(f"depends_on cycle among {sorted(pending)}")
            break
        order |= set(ready)
        for n in ready:
            del pending[n]
    return errors


def test_every_depends_on_condition_can_be_met() -> None:
    assert startable_errors(SERVICES) == []


def test_the_graph_check_finds_a_service_that_could_never_start() -> None:
    broken = copy.deepcopy(SERVICES)
    broken["setup"]["depends_on"]["prometheus"] = {"condition": "service_healthy"}
    broken["temporal-schema"]["depends_on"]["setup"] = {
        "condition": "service_completed_successfully"
    }
    errors = startable_errors(broken)
    assert "setup (always on) waits on prometheus (profile only)" in errors
    assert any(e.startswith("depends_on cycle") for e in errors), errors


class _ComposeLoader(yaml.SafeLoader):
    """YAML with compose's merge tags: ``!reset`` and ``!override``."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        value: Any = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)  # type: ignore[arg-type]
    return ("!replace", value)


_ComposeLoader.add_constructor("!reset", _tagged)
_ComposeLoader.add_constructor("!override", _tagged)


def merged(base: Any, override: Any) -> Any:
    """Compose's merge of an override file: mappings merge key by key, ``!reset`` and
    ``!override`` replace, anything else replaces."""
    if isinstance(override, tuple) and override[0] == "!replace":
        return override[1]
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: merged(base.get(k), override[k]) if k in override else base[k]
                for k in {**base, **override}}  # fmt: skip
    return override


@pytest.mark.parametrize("override", ["temporal-cloud.yml", "managed-postgres.yml"])
def test_each_override_leaves_a_valid_file_whose_services_can_all_start(override: str) -> None:
    text = (ROOT / "deploy/compose" / override).read_text()
    combined = merged(COMPOSE, yaml.load(text, Loader=_ComposeLoader))
    assert schema_errors(combined) == []
    assert startable_errors(combined["services"]) == []
    disabled = {n for n, s in combined["services"].items() if "profiles" in s}
    assert disabled - set(OBSERVABILITY) - set(LANGFUSE) == (
        {"temporal-schema", "temporal", "temporal-namespace", "temporal-ui"}
        if override == "temporal-cloud.yml"
        else {"postgres"}
    )
    assert f"deploy/compose/{override}" in README


def test_long_running_services_restart_and_one_shots_do_not_loop() -> None:
    for name, svc in SERVICES.items():
        if name in ONE_SHOTS:
            assert re.fullmatch(r"on-failure:\d+", svc["restart"]), name
        else:
            assert svc["restart"] == "unless-stopped", name


# ---- profiles ----------------------------------------------------------------------------


def test_observability_and_langfuse_are_profiles_that_are_off_by_default() -> None:
    profiled = {name: svc.get("profiles") for name, svc in SERVICES.items() if "profiles" in svc}
    assert profiled == {
        **{name: ["observability"] for name in OBSERVABILITY},
        **{name: ["langfuse"] for name in LANGFUSE},
    }


def test_grafana_loads_the_repositorys_provisioning_and_dashboards() -> None:
    mounts = dict(v.split(":")[:2] for v in SERVICES["grafana"]["volumes"] if v.startswith("."))
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/stratlab.yml").read_text()
    )
    assert mounts["./deploy/grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    sources = ROOT / "deploy/grafana/provisioning/datasources"
    urls = {
        ds["type"]: ds["url"]
        for f in sources.glob("*.yml")
        for ds in yaml.safe_load(f.read_text())["datasources"]
    }
    assert urls == {"prometheus": "http://prometheus:9090", "jaeger": "http://jaeger:16686"}
    assert all(url.split("//")[1].split(":")[0] in SERVICES for url in urls.values())


def test_the_collector_receives_where_the_readme_points_the_workers() -> None:
    config = yaml.safe_load((ROOT / "deploy/otel-collector.yaml").read_text())
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert http.endswith(":4318")
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318" in README
    exporter = config["exporters"][config["service"]["pipelines"]["traces"]["exporters"][0]]
    assert exporter["endpoint"].split(":")[0] in SERVICES
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    scraped = {
        name
        for job in prometheus["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    assert scraped == set(POOLS)


def test_langfuse_is_a_version_the_sdk_supports_and_uses_the_labs_keys() -> None:
    web = SERVICES["langfuse-web"]
    assert interpolate(web["image"]) == "langfuse/langfuse:4"  # the v5 SDK needs v4.59+
    assert interpolate(SERVICES["langfuse-worker"]["image"]) == "langfuse/langfuse-worker:4"
    env = web["environment"]
    assert env["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"] == "${LANGFUSE_PUBLIC_KEY:-}"
    assert env["LANGFUSE_INIT_PROJECT_SECRET_KEY"] == "${LANGFUSE_SECRET_KEY:-}"


# ---- the image ---------------------------------------------------------------------------


def test_the_image_installs_exactly_what_the_readme_tells_a_vm_to_install() -> None:
    runs = dockerfile_instructions("RUN")
    installs = [r for r in runs if "pip" in r or "install" in r]
    apt = [r for r in installs if "apt-get install" in r]
    assert len(apt) == 1 and "bubblewrap" in apt[0]
    assert "apt-get install bubblewrap" in README
    # The project itself: only through the shared script, which the README gives too.
    project = [r for r in installs if r not in apt]
    assert len(project) == 1 and project[0].startswith("sh deploy/install.sh")
    assert "pip" not in project[0]
    deploying = README.split("## Deploying", 1)[1]
    assert "sh deploy/install.sh" in deploying
    script = (ROOT / "deploy/install.sh").read_text()
    assert "pip install" in script and "stratlab warm-cache" in script
    assert parse_cli(["warm-cache"]) == "stratlab warm-cache"


def test_the_image_copies_every_package_the_project_installs() -> None:
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {p.rstrip("*") for p in include["packages"]["find"]["include"]}
    copied = {c.split()[0] for c in dockerfile_instructions("COPY")}
    assert packages <= copied
    for source in " ".join(dockerfile_instructions("COPY")).split():
        if not source.startswith("./"):
            assert (ROOT / source).exists(), source


def test_the_image_runs_as_a_user_and_checks_its_health() -> None:
    users = dockerfile_instructions("USER")
    assert users and users[-1] not in ("root", "0")
    check = dockerfile_instructions("HEALTHCHECK")
    assert len(check) == 1 and '"-m", "workers.health"' in check[0]
    assert importlib.util.find_spec("workers.health") is not None
    env = " ".join(dockerfile_instructions("ENV"))
    assert "NUMBA_CACHE_DIR=" in env and "STRATLAB_METRICS_PORT=9464" in env
    # The cache compiled at build time must match any host's CPU, at build and at run time.
    assert "NUMBA_CPU_NAME=generic" in env
