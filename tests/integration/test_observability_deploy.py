"""The deployment files, checked without a container engine: Prometheus' own checker and rule
unit tests (promtool), a Compose implementation's own parser (`docker compose config`, or
Debian's `docker-compose` where the plugin is missing), and what the Dockerfiles promise.

promtool and a Compose implementation are installed by `make system-deps`
(scripts/system-deps.sh); without them these tests fail rather than skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret-0001",
    "RABBITMQ_API_PASSWORD": "mq-api-secret-0002",
    "RABBITMQ_RENDERER_PASSWORD": "mq-renderer-secret-0004",
    "SNAPSHOT_API_JWT_SECRET": "jwt-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret-0003",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run `make system-deps` (scripts/system-deps.sh)")
    return path


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def test_prometheus_config_and_rules_pass_promtool():
    promtool = tool("promtool")
    config = run([promtool, "check", "config", str(DEPLOY / "prometheus/prometheus.yml")])
    assert config.returncode == 0, config.stdout + config.stderr
    assert "SUCCESS" in config.stdout and "alerts.yml" in config.stdout  # rule file resolved
    rules = run([promtool, "check", "rules", str(DEPLOY / "prometheus/alerts.yml")])
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert re.search(r"SUCCESS: \d+ rules found", rules.stdout)


def test_alert_rules_fire_on_what_they_name_and_stay_quiet_otherwise():
    result = run([tool("promtool"), "test", "rules", str(DEPLOY / "prometheus/alerts_test.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())
    names = {r["alert"] for g in alerts["groups"] for r in g["rules"]}
    tests = yaml.safe_load((DEPLOY / "prometheus/alerts_test.yml").read_text())
    tested = {c["alertname"] for t in tests["tests"] for c in t["alert_rule_test"]}
    assert names == tested  # every alert has a unit test
    # The list: error ratio, task latency, dead letters, outbox, no renderer consuming.
    assert {
        "SnapshotApiErrorRatioHigh",
        "SnapshotTaskLatencyHigh",
        "SnapshotJobsDeadLettered",
        "SnapshotOutboxBacklog",
        "SnapshotNoRendererConsuming",
    } <= names
    for group in alerts["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("page", "warn"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


def test_prometheus_discovers_every_renderer_replica_by_dns():
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    renderer = jobs["renderer"]
    assert "static_configs" not in renderer
    (dns,) = renderer["dns_sd_configs"]
    assert dns["names"] == ["renderer"] and dns["type"] == "A" and dns["port"] == 9100
    assert jobs["api"]["dns_sd_configs"][0]["port"] == 8000
    broker = jobs["rabbitmq"]
    assert broker["metrics_path"] == "/metrics/detailed"
    assert broker["static_configs"][0]["targets"] == ["rabbitmq:15692"]
    assert config["rule_files"] == ["alerts.yml"]


def compose_command() -> list[str]:
    """`docker compose` when the plugin is there, else Debian's `docker-compose`."""
    docker = shutil.which("docker")
    if docker and run([docker, "compose", "version"]).returncode == 0:
        return [docker, "compose"]
    return [tool("docker-compose")]


def compose_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("COMPOSE")}
    return {**env, **SECRETS, **overrides}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as the Compose implementation resolves it (interpolated, merged)."""
    result = run([*compose_command(), "-f", "docker-compose.yml", "config"], env=compose_env())
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def test_compose_file_parses_and_requires_its_secrets(compose):
    assert set(compose["services"]) == {
        "postgres",
        "rabbitmq",
        "migrate",
        "api",
        "renderer",
        "prometheus",
        "grafana",
    }
    for secret, value in SECRETS.items():
        env = compose_env()
        del env[secret]
        missing = run([*compose_command(), "-f", "docker-compose.yml", "config"], env=env)
        assert missing.returncode != 0, f"{secret} is not required"
        assert secret in missing.stdout + missing.stderr
        assert value not in (ROOT / "docker-compose.yml").read_text()
    text = json.dumps(compose)
    assert SECRETS["SNAPSHOT_API_JWT_SECRET"] in text  # it does reach the services


def _volumes(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["target"]: v for v in service.get("volumes", [])}


def test_compose_services_are_wired_for_scaling_and_health(compose):
    s = compose["services"]
    for name in ("postgres", "rabbitmq"):
        assert s[name]["healthcheck"]["test"], name
    renderer, api, migrate = s["renderer"], s["api"], s["migrate"]
    # `--scale renderer=N` needs no fixed name and no host port.
    assert "container_name" not in renderer and "ports" not in renderer
    store = "/var/lib/snapshots/store"
    assert _volumes(renderer)[store]["source"] == "store"
    assert not _volumes(renderer)[store].get("read_only", False)
    assert _volumes(api)[store]["source"] == "store" and _volumes(api)[store]["read_only"] is True
    assert "store" in compose["volumes"]
    # The one-off migration runs before the API; both need healthy backends.
    assert migrate["command"] == ["snapshot-api", "migrate"] and migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert renderer["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    # Each service reaches the broker as its own user (deploy/rabbitmq/definitions.json), never
    # as guest nor as an administrator: compose creates no default user any more.
    api_url = api["environment"]["SNAPSHOT_API_AMQP_URL"]
    renderer_url = renderer["environment"]["SNAPSHOT_RENDERER_AMQP_URL"]
    password = SECRETS["RABBITMQ_API_PASSWORD"]
    assert api_url == f"amqp://snapshot-api:{password}@rabbitmq:5672/"
    password = SECRETS["RABBITMQ_RENDERER_PASSWORD"]
    assert renderer_url == f"amqp://snapshot-renderer:{password}@rabbitmq:5672/"
    assert migrate["environment"]["SNAPSHOT_API_AMQP_URL"] == api_url
    broker_env = s["rabbitmq"]["environment"]
    assert not {"RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"} & set(broker_env)
    # Builds point at the Dockerfiles in deploy/docker.
    for name, dockerfile in (("api", "api"), ("migrate", "api"), ("renderer", "renderer")):
        build = s[name]["build"]
        assert (Path(build["context"]) / build["dockerfile"]).resolve() == (
            DEPLOY / f"docker/{dockerfile}.Dockerfile"
        ), name


def test_compose_monitoring_uses_the_deploy_files(compose):
    s = compose["services"]
    plugins = _volumes(s["rabbitmq"])["/etc/rabbitmq/enabled_plugins"]
    assert Path(plugins["source"]).resolve() == DEPLOY / "rabbitmq/enabled_plugins"
    assert "rabbitmq_prometheus" in (DEPLOY / "rabbitmq/enabled_plugins").read_text()
    prometheus = _volumes(s["prometheus"])["/etc/prometheus"]
    assert Path(prometheus["source"]).resolve() == DEPLOY / "prometheus"
    grafana = _volumes(s["grafana"])
    assert Path(grafana["/etc/grafana/provisioning"]["source"]).resolve() == (
        DEPLOY / "grafana/provisioning"
    )
    assert Path(grafana["/etc/grafana/dashboards"]["source"]).resolve() == (
        DEPLOY / "grafana/dashboards"
    )
    provisioning = DEPLOY / "grafana/provisioning"
    providers = yaml.safe_load((provisioning / "dashboards/snapshots.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    sources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert (source["uid"], source["url"]) == ("prometheus", "http://prometheus:9090")


def test_dashboard_has_the_panels_operators_need():
    dashboard = json.loads((DEPLOY / "grafana/dashboards/snapshots.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert dashboard["uid"] == "room-snapshots"
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in panels}
    wanted = {  # the panels, by the metric each must show
        "request rate": "snapshot_api_request_duration_seconds_count",
        "request latency": "snapshot_api_request_duration_seconds_bucket",
        "render rate": "snapshot_renderer_render_duration_seconds_count",
        "render p95": "snapshot_renderer_render_duration_seconds_bucket",
        "cache hit ratio by layer": "snapshot_renderer_cache_requests_total",
        "queue depth": "snapshot_api_queue_messages",
        "task outcomes": "snapshot_api_task_latency_seconds_count",
        "renderer count": 'up{job="renderer"}',
    }
    for what, needle in wanted.items():
        assert any(needle in e for e in exprs.values()), what
    for panel in panels:
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("service", ["api", "renderer"])
def test_dockerfiles_are_multi_stage_locked_single_package_and_unprivileged(service):
    text = (DEPLOY / f"docker/{service}.Dockerfile").read_text()
    package = f"snapshot-{service}"
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, re.MULTILINE)
    assert len(stages) >= 2 and stages[0][1] == "build"
    syncs = re.findall(r"uv sync ([^\n]+)", text)
    assert syncs and all("--frozen" in s and f"--package {package}" in s for s in syncs)
    assert all("--no-dev" in s for s in syncs)
    assert "COPY pyproject.toml uv.lock" in text
    other = "renderer" if service == "api" else "api"
    # Only the other service's pyproject.toml (uv checks the lock file against it), no code.
    assert f"COPY {other}-service {other}-service" not in text
    # The venv is built at the path it runs from: console scripts keep absolute shebangs.
    assert (
        "WORKDIR /app" in text.split("FROM")[2]
        and "COPY --from=build /app/.venv /app/.venv" in text
    )
    user = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*healthz", text, re.MULTILINE)
    if service == "renderer":
        for lib in ("libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0", "fontconfig"):
            assert lib in text, lib
        for font in ("fonts-noto-core", "fonts-noto-cjk", "fonts-noto-color-emoji"):
            assert font in text, font
    else:
        assert "weasyprint" not in text.lower() and "pango" not in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


# What the README showed before issue 13; none may appear in it again.
OLD_EXAMPLES = ("change-me", "change-me-too", "change-me-three", "at-least-16-characters-long")


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([*compose_command(), "-f", "docker-compose.yml", "config"], env=env)


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_compose_refuses_an_empty_secret(secret):
    """An .env line ``VAR=`` (a template left unfilled) is refused like a missing one."""
    result = compose_config(compose_env(**{secret: ""}))
    assert result.returncode != 0, f"{secret} may be empty"
    assert secret in result.stdout + result.stderr


def readme_env_script() -> str:
    """The shell block of README's "The stack in containers" that writes .env."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### The stack in containers", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return block.split("docker compose up", 1)[0]


def test_readme_shows_no_password_only_how_to_generate_one():
    readme = (ROOT / "README.md").read_text()
    for example in OLD_EXAMPLES:
        assert example not in readme, example
    assignments = re.findall(r"^(\w*(?:PASSWORD|SECRET)\w*)=(.*)$", readme, re.MULTILINE)
    assert {name for name, _ in assignments} >= set(SECRETS)
    for name, value in assignments:
        assert value.startswith("$(secret "), f"README shows a literal {name}"


def test_readme_recipe_writes_random_secrets_that_compose_and_the_api_accept(tmp_path):
    def generate(folder: Path) -> dict[str, str]:
        folder.mkdir()
        script = readme_env_script()
        done = subprocess.run(["bash", "-euc", script], cwd=folder, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        lines = (folder / ".env").read_text().splitlines()
        assert oct((folder / ".env").stat().st_mode & 0o777) == "0o600"
        return dict(line.split("=", 1) for line in lines if line)

    first, second = generate(tmp_path / "a"), generate(tmp_path / "b")
    assert set(first) == set(SECRETS)
    for name, value in first.items():
        assert len(value) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", value), name  # URL-safe
        assert value != second[name], name  # generated, not a fixed example
    result = compose_config(compose_env(**first))
    assert result.returncode == 0, result.stderr
    from snapshot_api.settings import Settings

    jwt = first["SNAPSHOT_API_JWT_SECRET"]
    assert Settings(env="production", jwt_secret=jwt, jwt_algorithm="HS512").secret == jwt


def _published(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host address, host port) of each published port, in either Compose's output form."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):  # docker compose v2
            found.append((port.get("host_ip", ""), str(port["published"])))
        else:  # docker-compose 1.29: "127.0.0.1:9090:9090/tcp" (or "9090:9090/tcp")
            parts = port.split(":")
            host, published = ("", parts[0]) if len(parts) == 2 else (parts[0], parts[1])
            found.append((host, published))
    return found


def test_monitoring_is_published_on_loopback_unless_configured(compose):
    s = compose["services"]
    assert _published(s["prometheus"]) == [("127.0.0.1", "9090")]
    assert _published(s["grafana"]) == [("127.0.0.1", "3000")]
    for name in ("postgres", "rabbitmq", "renderer", "migrate"):
        assert "ports" not in s[name], name  # only the API and the monitoring UIs publish
    wider = compose_config(compose_env(PROMETHEUS_BIND="0.0.0.0", GRAFANA_BIND="192.0.2.7"))
    assert wider.returncode == 0, wider.stderr
    opened = yaml.safe_load(wider.stdout)["services"]
    assert _published(opened["prometheus"]) == [("0.0.0.0", "9090")]
    assert _published(opened["grafana"]) == [("192.0.2.7", "3000")]


def test_every_container_is_read_only_without_capabilities_or_privilege_gain(compose):
    for name, service in compose["services"].items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert not service.get("cap_add") and not service.get("privileged"), name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert "/tmp" in service.get("tmpfs", []), name
    s = compose["services"]
    # Their images start as root to chown and then switch user, which needs capabilities.
    assert s["postgres"]["user"] == "postgres" and s["rabbitmq"]["user"] == "rabbitmq"
    assert "/var/run/postgresql" in s["postgres"]["tmpfs"]  # the server's socket and pid
    assert "/var/log/grafana" in s["grafana"]["tmpfs"]


def _bytes(size: str | int) -> int:
    if isinstance(size, int):
        return size
    number, unit = re.fullmatch(r"(\d+)([kmg]?)b?", size.lower()).groups()  # type: ignore[union-attr]
    return int(number) * 1024 ** " kmg".index(unit or " ")


def test_renderers_have_a_memory_limit(compose):
    renderer = compose["services"]["renderer"]
    limit = renderer.get("mem_limit") or renderer["deploy"]["resources"]["limits"]["memory"]
    assert 2**30 <= _bytes(limit) <= 8 * 2**30
    smaller = compose_config(compose_env(SNAPSHOT_RENDERER_MEM_LIMIT="1g"))
    assert smaller.returncode == 0, smaller.stderr
    resolved = yaml.safe_load(smaller.stdout)["services"]["renderer"]
    assert _bytes(resolved.get("mem_limit") or 0) == 2**30


def test_grafana_is_pinned_to_a_supported_major_and_the_dashboard_runs_on_it():
    """Grafana fixes security issues in its recent releases only (11.1, the tag before issue 13,
    is out of support); a pinned tag, not ``latest``."""
    text = (ROOT / "docker-compose.yml").read_text()
    (tag,) = re.findall(r"image: grafana/grafana:(\S+)", text)
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), tag  # a release, not latest or a branch
    assert int(tag.split(".")[0]) >= 12, tag
    # Grafana 12 no longer runs AngularJS panels: the dashboard must use none of them.
    dashboard = json.loads((DEPLOY / "grafana/dashboards/snapshots.json").read_text())
    kinds = {panel["type"] for panel in dashboard["panels"]}
    assert not kinds & {"graph", "singlestat", "table-old", "grafana-piechart-panel"}, kinds


def test_the_broker_loads_the_service_users_with_this_deployments_passwords(compose, tmp_path):
    """Compose mounts definitions.json and its loader; the entrypoint fills in the passwords
    compose requires (refusing characters a URL or sed would mangle), so the broker's users
    are exactly the file's: two service users, no tags, no administrator."""
    broker = compose["services"]["rabbitmq"]
    mounts = {t: Path(v["source"]).resolve() for t, v in _volumes(broker).items()}
    assert mounts["/etc/rabbitmq/definitions.json"] == DEPLOY / "rabbitmq/definitions.json"
    assert mounts["/etc/rabbitmq/snapshots-entrypoint.sh"] == DEPLOY / "rabbitmq/entrypoint.sh"
    conf = mounts["/etc/rabbitmq/conf.d/20-snapshots.conf"]
    assert "load_definitions = /tmp/definitions.json" in conf.read_text()
    assert broker["entrypoint"] == ["/bin/sh", "/etc/rabbitmq/snapshots-entrypoint.sh"]
    assert broker["command"] == ["rabbitmq-server"]

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker-entrypoint.sh").write_text('#!/bin/sh\necho "started: $*"\n')
    (fake / "docker-entrypoint.sh").chmod(0o755)
    out = tmp_path / "definitions.json"
    env = {
        "PATH": f"{fake}:/usr/bin:/bin",
        "DEFINITIONS_TEMPLATE": str(DEPLOY / "rabbitmq/definitions.json"),
        "DEFINITIONS_FILE": str(out),
        **{k: v for k, v in broker["environment"].items()},
    }
    script = str(DEPLOY / "rabbitmq/entrypoint.sh")
    started = run(["sh", script, *broker["command"]], env=env)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "started: rabbitmq-server"
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    loaded = json.loads(out.read_text())
    users = {u["name"]: u for u in loaded["users"]}
    assert users["snapshot-api"]["password"] == SECRETS["RABBITMQ_API_PASSWORD"]
    assert users["snapshot-renderer"]["password"] == SECRETS["RABBITMQ_RENDERER_PASSWORD"]
    assert all(u["tags"] == [] for u in users.values())
    assert {(g["user"], g["vhost"]) for g in loaded["permissions"]} == {
        ("snapshot-api", "/"),
        ("snapshot-renderer", "/"),
    }
    assert [v["name"] for v in loaded["vhosts"]] == ["/"]  # a blank node gets no default one

    for bad in ("", "has space", "pipe|s", 'quo"te'):
        refused = run(["sh", script, "rabbitmq-server"], env={**env, "RABBITMQ_API_PASSWORD": bad})
        assert refused.returncode == 64, bad
        assert "RABBITMQ_API_PASSWORD" in refused.stderr and "started" not in refused.stdout
