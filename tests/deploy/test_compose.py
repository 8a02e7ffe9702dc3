"""compose.yaml: valid by the Compose specification's schema, and in agreement with the code.

These machines have no Docker engine, so the file is validated against the official
compose-spec JSON schema (shipped inside check-jsonschema) and held against gongji's own
parser, options and metrics; ``docker compose config`` runs too where the plugin exists.
"""

from __future__ import annotations

import ast
import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.identifiers import is_region_code, province_of
from gongji.commands.options import DEFAULT_METRICS_PORT
from gongji.deploy import SHIPPED_SCENARIO
from gongji.population import DEMO_REGIONS
from gongji.scenario import Scenario, load_scenario
from tests.deploy.artefacts import (
    COMPOSE,
    ROOT,
    CommandError,
    builds_gongji,
    command,
    command_names,
    compose,
    container_env,
    container_ports,
    environment,
    gongji_services,
    image_env,
    installed_packages,
    long_running,
    mount_for,
    mounts,
    parse_amqp_url,
    parse_command,
    services,
)

pytestmark = pytest.mark.timeout(120)

PROVINCE_PREFIX = "province-"

# Variables the other images read, by image name (documented settings, not guesses):
# Grafana maps GF_<SECTION>_<KEY> onto grafana.ini; these are the keys compose sets.
IMAGE_VARIABLES: dict[str, frozenset[str]] = {
    "grafana/grafana": frozenset(
        {
            "GF_SECURITY_ADMIN_USER",  # [security] admin_user
            "GF_SECURITY_ADMIN_PASSWORD",  # [security] admin_password
            "GF_AUTH_ANONYMOUS_ENABLED",  # [auth.anonymous] enabled
            "GF_AUTH_ANONYMOUS_ORG_ROLE",  # [auth.anonymous] org_role
            "GF_USERS_ALLOW_SIGN_UP",  # [users] allow_sign_up
            "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH",  # [dashboards] default_home_...
        }
    ),
    "rabbitmq": frozenset(),
    "prom/prometheus": frozenset(),
}
# Read by the system and the Python interpreter, not by gongji's code.
RUNTIME_VARIABLES = frozenset({"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"})


def environment_variables_read_by_code() -> set[str]:
    """Names the project's code reads from the environment (os.environ / os.getenv)."""
    names: set[str] = set()
    for package in installed_packages():
        for path in package.rglob("*.py"):
            names |= _read_names(ast.parse(path.read_text(encoding="utf-8")))
    return names


def _read_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()

    def environ(node: ast.expr) -> bool:
        return ast.unparse(node) in ("os.environ", "environ")

    for node in ast.walk(tree):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "pop", "setdefault"):
                getter = environ(func.value)
            else:
                getter = ast.unparse(func) in ("os.getenv", "getenv")
            if getter:
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and environ(node.value):
            key = node.slice
        elif isinstance(node, ast.Compare) and any(environ(c) for c in node.comparators):
            key = node.left
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.add(key.value)
    return names


# --- the compose specification -------------------------------------------------------


def validate_with_compose_spec(path: Path) -> subprocess.CompletedProcess[str]:
    """Run check-jsonschema with its vendored copy of the official compose-spec.json."""
    schema = ["--builtin-schema", "vendor.compose-spec", "--color", "never"]
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *schema, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_file_validates_against_the_compose_spec_schema() -> None:
    result = validate_with_compose_spec(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_validator_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    """The validator is real: a typo in a depends_on condition fails it."""
    broken = tmp_path / "compose.yaml"
    text = COMPOSE.read_text(encoding="utf-8")
    assert "condition: service_healthy" in text
    broken.write_text(text.replace("condition: service_healthy", "condition: healthy", 1))
    result = validate_with_compose_spec(broken)
    assert result.returncode != 0
    assert "healthy" in result.stdout + result.stderr


def test_docker_compose_config_accepts_the_file() -> None:
    """Docker's own reading of the file, where the compose plugin is installed."""
    docker = shutil.which("docker")
    plugin = docker is not None and (
        subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode
        == 0
    )
    if docker is None or not plugin:
        pytest.skip("no `docker compose` plugin here; the compose-spec schema test stands in")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "--profile", "load", "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- commands -------------------------------------------------------------------------


def gongji_service_names() -> list[str]:
    return sorted(gongji_services())


@pytest.mark.parametrize("name", gongji_service_names())
def test_every_gongji_service_command_parses_with_the_real_cli(name: str) -> None:
    service = services()[name]
    argv = command(service)
    assert argv, f"{name}: no command (the image's default is --help)"
    needed = "deploy/README.md lists the commands compose.yaml needs"
    if argv[0] not in command_names():
        pytest.fail(
            f"compose service {name!r} runs `gongji {' '.join(argv)}`, but gongji has no "
            f"{argv[0]!r} command yet (it has: {', '.join(command_names())}); {needed}",
            pytrace=False,
        )
    try:
        parse_command(argv, container_env(service))
        refused = ""
    except CommandError as error:
        refused = str(error)
    if refused:
        pytest.fail(
            f"compose service {name!r} runs `gongji {' '.join(argv)}`, which gongji's parser "
            f"refuses ({needed}):\n{refused}",
            pytrace=False,
        )


def test_one_image_serves_every_gongji_service() -> None:
    images = {s.get("image") for s in gongji_services().values()}
    assert len(images) == 1, f"gongji services use several images: {images}"
    assert {"clearinghouse", "seed", "load"} <= set(gongji_services())


# --- regions and their registration ---------------------------------------------------


def region_services() -> dict[str, list[str]]:
    """Region codes by service name, from each province host's ``--code`` and ``--regions``."""
    found = {}
    for name, service in gongji_services().items():
        argv = command(service)
        assert argv[:1] != ["region"], f"{name}: compose hosts regions by province"
        if argv[:1] == ["province"]:
            code = argv[argv.index("--code") + 1]
            assert name == f"{PROVINCE_PREFIX}{code}", f"{name} hosts province {code}"
            codes = argv[argv.index("--regions") + 1].split(",")
            assert all(province_of(c) == code for c in codes), f"{name}: {codes}"
            found[name] = codes
    return found


def option(argv: list[str], name: str) -> str:
    assert argv.count(name) == 1, f"{name} missing or repeated in {argv}"
    return argv[argv.index(name) + 1]


def scenario_of(name: str) -> Scenario:
    """The scenario a service mounts (where its ``--scenario`` option points)."""
    service = services()[name]
    found = mount_for(service, option(command(service), "--scenario"))
    assert found is not None, f"{name}: its scenario file is not mounted"
    return load_scenario(found[1])


def test_several_regions_with_real_codes_some_enabled_some_not() -> None:
    """The seed step registers exactly the hosted regions, enabled as the scenario says,
    one province host running several."""
    hosted = region_services()
    codes = [code for codes in hosted.values() for code in codes]
    assert len(codes) >= 3 and max(len(c) for c in hosted.values()) >= 2
    seed = command(services()["seed"])
    assert seed[:2] == ["admin", "seed"] and "--enable-all" not in seed
    assert "--load-population" in seed
    scenario = scenario_of("seed")
    assert sorted(scenario.codes) == sorted(codes), "seed must register exactly the hosted regions"
    assert all(is_region_code(code) for code in codes)
    enabled = {r.code: r.enabled for r in scenario.regions}
    assert any(enabled.values()) and not all(enabled.values()), enabled
    assert {r.code: r.enabled for r in DEMO_REGIONS if r.code in enabled} == {
        r.code: r.enabled for r in DEMO_REGIONS
    }


def test_load_draws_on_the_population_the_seed_enrolled() -> None:
    seed, load = command(services()["seed"]), command(services()["load"])
    assert scenario_of("seed") == scenario_of("load")
    for name in ("--persons", "--population-seed"):
        assert option(seed, name) == option(load, name), name
    # Re-registering would undo `admin enable`/`disable` done since the seed ran.
    assert "--setup" not in load and "--enable-all" not in load


# --- environment ----------------------------------------------------------------------


def test_every_variable_in_the_image_is_read_by_the_code() -> None:
    read = environment_variables_read_by_code() | RUNTIME_VARIABLES
    assert set(image_env()) - read == set(), "the Dockerfile sets variables nothing reads"


def _other_value(value: str) -> str:
    return str(int(value) + 1) if value.isdigit() else f"{value}-other"


@pytest.mark.parametrize("name", gongji_service_names())
def test_every_variable_a_gongji_service_sets_changes_what_its_command_does(name: str) -> None:
    """Each variable in the service's ``environment`` is read by its own command: with
    another value, the command parses differently (or is refused)."""
    service = services()[name]
    argv = command(service)
    if argv[0] not in command_names():
        pytest.skip(f"gongji has no {argv[0]!r} command yet (see the parse test)")
    env = container_env(service)
    try:
        parsed = parse_command(argv, env)
    except CommandError:
        pytest.skip(f"`gongji {' '.join(argv[:2])}` does not parse yet (see the parse test)")
    ignored = []
    for variable, value in environment(service).items():
        try:
            changed = parse_command(argv, env | {variable: _other_value(value)})
        except CommandError:
            continue  # refused: the variable is read
        if changed == parsed:
            ignored.append(variable)
    assert ignored == [], f"`gongji {argv[0]}` ignores {ignored}"


def test_every_variable_given_to_another_image_is_one_it_reads() -> None:
    for name, service in services().items():
        if builds_gongji(service):
            continue
        image = str(service["image"]).rsplit(":", 1)[0]
        assert image in IMAGE_VARIABLES, f"{name}: image {image} not known to this test"
        unknown = set(environment(service)) - IMAGE_VARIABLES[image]
        assert not unknown, f"{name}: {sorted(unknown)} are not settings of {image}"


@pytest.mark.parametrize("name", gongji_service_names())
def test_each_gongji_service_reaches_the_broker_as_its_own_user(name: str) -> None:
    env = container_env(services()[name])
    assert "AMQP_URL" in env, f"{name}: no AMQP_URL"
    url = parse_amqp_url(env["AMQP_URL"])
    assert url.user and url.user != "guest", f"{name}: connects as {url.user!r}"
    assert url.host == "rabbitmq" and url.port in container_ports(services()["rabbitmq"])
    others = {
        other: parse_amqp_url(environment(s)["AMQP_URL"]).user
        for other, s in gongji_services().items()
        if other != name
    }
    assert url.user not in others.values(), f"{name} shares its broker user: {others}"
    argv = command(services()[name])
    with contextlib.suppress(CommandError):  # a missing command fails the parse test
        assert parse_command(argv, env).amqp_url == env["AMQP_URL"]


# --- long-running services: metrics, data, health -------------------------------------


def long_running_gongji() -> list[str]:
    return sorted(n for n, s in gongji_services().items() if long_running(s))


def test_the_clearinghouse_and_every_province_host_stay_up() -> None:
    assert long_running_gongji() == sorted(["clearinghouse", *region_services()])


@pytest.mark.parametrize("name", long_running_gongji())
def test_metrics_are_served_where_prometheus_and_the_healthcheck_look(name: str) -> None:
    service = services()[name]
    args = parse_command(command(service), container_env(service))
    assert args.metrics_host == "0.0.0.0", "metrics must listen beyond the container"
    assert args.metrics_port == DEFAULT_METRICS_PORT
    assert args.metrics_port in container_ports(service)
    probe = " ".join(service["healthcheck"]["test"])
    assert f"127.0.0.1:{args.metrics_port}/metrics" in probe


@pytest.mark.parametrize("name", long_running_gongji())
def test_service_data_lives_on_its_own_named_volume(name: str) -> None:
    service = services()[name]
    args = parse_command(command(service), container_env(service))
    at_data = [m for m in mounts(service) if m.target == str(args.data_dir)]
    assert len(at_data) == 1, f"{name}: nothing mounted at its data dir {args.data_dir}"
    volume = at_data[0].source
    assert not at_data[0].is_bind and volume in (compose().get("volumes") or {})
    users = [n for n, s in services().items() if any(m.source == volume for m in mounts(s))]
    assert users == [name], f"volume {volume} is shared by {users}"


def test_gongji_services_start_after_the_broker_is_healthy() -> None:
    rabbitmq = services()["rabbitmq"]
    assert rabbitmq["healthcheck"]["test"][1] == "rabbitmq-diagnostics"
    for name, service in gongji_services().items():
        depends = service.get("depends_on") or {}
        assert depends.get("rabbitmq", {}).get("condition") == "service_healthy", name


def test_depends_on_conditions_are_backed() -> None:
    """service_healthy needs a healthcheck; service_completed_successfully a one-shot."""
    for name, service in services().items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for other, spec in depends.items():
            target = services()[other]
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in target, f"{name} waits for {other}'s missing healthcheck"
            if condition == "service_completed_successfully":
                assert not long_running(target), f"{name} waits for {other}, which never exits"


def test_the_load_generator_runs_only_under_its_profile() -> None:
    assert services()["load"].get("profiles") == ["load"]
    assert command(services()["load"])[0] == "load"
    others = [n for n, s in services().items() if n != "load" and s.get("profiles")]
    assert others == [], f"{others} would not start with a plain `docker compose up`"


def test_every_bind_mount_comes_from_the_repository() -> None:
    for name, service in services().items():
        for mount in mounts(service):
            if mount.is_bind:
                assert mount.read_only, f"{name}: {mount.source} should be mounted :ro"
                path = mount.host_path()
                assert path.exists() and ROOT in path.parents, f"{name}: {mount.source} missing"


def test_rabbitmq_reads_the_definitions_its_config_names() -> None:
    from tests.deploy.artefacts import RABBITMQ_CONF, conf_settings

    rabbitmq = services()["rabbitmq"]
    found = mount_for(rabbitmq, conf_settings(RABBITMQ_CONF)["load_definitions"])
    assert found is not None and found[1].is_file()
    conf = [m for m in mounts(rabbitmq) if m.host_path() == RABBITMQ_CONF]
    # The official image's conf.d/10-defaults.conf would override /etc/rabbitmq/rabbitmq.conf.
    assert conf and conf[0].target.startswith("/etc/rabbitmq/conf.d/"), conf
    assert conf[0].target.rsplit("/", 1)[-1] > "10-defaults.conf"
    plugins = mount_for(rabbitmq, "/etc/rabbitmq/enabled_plugins")
    assert plugins is not None and plugins[1].is_file()


# --- the generator ----------------------------------------------------------------------


def test_the_shipped_files_are_gongji_composes_output(tmp_path: Path) -> None:
    """compose.yaml, definitions.json and prometheus.yml are what ``gongji compose`` writes
    for deploy/scenario.toml: regenerate them rather than edit them."""
    scenario = tmp_path / "deploy" / "scenario.toml"
    scenario.parent.mkdir()
    scenario.write_bytes(SHIPPED_SCENARIO.read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "gongji.cli", "compose", "--scenario", "deploy/scenario.toml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for path in (
        "compose.yaml",
        "deploy/rabbitmq/definitions.json",
        "deploy/prometheus/prometheus.yml",
    ):
        written = (tmp_path / path).read_text(encoding="utf-8")
        assert written == (ROOT / path).read_text(encoding="utf-8"), (
            f"{path} differs from `gongji compose --scenario deploy/scenario.toml`'s output"
        )


def test_compose_writes_a_valid_file_for_a_scenario_of_many_provinces(tmp_path: Path) -> None:
    """The rollout scenario (34 regions): a host per province, each region in one."""
    from gongji.deploy import write_compose
    from gongji.scenario import ROLLOUT_SCENARIO_PATH

    scenario = load_scenario(ROLLOUT_SCENARIO_PATH)
    written = write_compose(scenario.regions, ROLLOUT_SCENARIO_PATH, tmp_path)
    assert validate_with_compose_spec(written[0]).returncode == 0
    text = written[0].read_text(encoding="utf-8")
    provinces = {province_of(code) for code in scenario.codes}
    assert text.count('command: ["province", "--code"') == len(provinces)
    for code in scenario.codes:
        assert text.count(code) >= 1
