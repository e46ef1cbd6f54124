"""Observability of both services as real processes, watched by a real Prometheus.

One stack (API with two uvicorn workers, one renderer, JSON logs) and one Prometheus (Debian's
package, on loopback, a temporary config and storage) for the module. A scripted run makes
N distinct snapshots and M repeats of already rendered content; everything else is checked
against those numbers: the admin summary, PromQL answers, the live ``/metrics`` (promtool and
the names used by the dashboard and the alert rules), the log lines, and an alert rule going
pending when the only renderer stops.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families
from support.stack import Stack, free_port
from support.waiting import until_sync

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
N_DISTINCT, M_REPEATS, HEALTH_PROBES = 3, 2, 40
RENDERED_JOBS = 'sum(snapshot_renderer_job_outcomes_total{outcome="completed"})'
STALE_VALUE = 1000.0
# Metrics the dashboard may use that these services do not export, and why:
BROKER_METRICS = {
    # RabbitMQ's rabbitmq_prometheus plugin, scraped at /metrics/detailed with the
    # queue_coarse_metrics family (deploy/prometheus/prometheus.yml).
    "rabbitmq_detailed_queue_messages",
}
PROMETHEUS_OWN = {"up"}  # written by Prometheus for every target it scrapes


def need(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run `make system-deps` (scripts/system-deps.sh)")
    return path


# --- the stack and the scripted run -------------------------------------------------------------
def plant_stale_metrics(folder: Path) -> None:
    """What a previous run's worker leaves behind; ``serve`` must empty the folder first."""
    d = MmapedDict(str(folder / "counter_999999.db"))
    key = mmap_key(
        "snapshot_api_snapshots_created",
        "snapshot_api_snapshots_created_total",
        ["reused"],
        ["false"],
        "stale",
    )
    d.write_value(key, STALE_VALUE, 0.0)
    d.close()


@dataclass
class Run:
    stack: Stack
    renderer_port: int
    rooms: list[str] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    request_id: str = "obs-e2e-request-0001"


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    stack = Stack(workers=2)
    multiproc = Path(stack.env["PROMETHEUS_MULTIPROC_DIR"])
    stack.env.update(
        SNAPSHOT_API_LOG_FORMAT="json",
        SNAPSHOT_RENDERER_LOG_FORMAT="json",
        SNAPSHOT_RENDERER_WORKER_MAX_JOBS=str(N_DISTINCT),  # the N-th render recycles its worker
    )
    plant_stale_metrics(multiproc)
    try:
        stack.start_api()
        renderer = stack.start_renderer()
        result = Run(stack, renderer.metrics_port)  # type: ignore[attr-defined]
        yield result
    finally:
        stack.stop()
        for folder in (stack.store, stack.logs, multiproc):
            shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Prometheus:
    url: str

    def query(self, promql: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (promql, body)
        return list(body["data"]["result"])

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def get(self, path: str) -> Any:
        r = httpx.get(f"{self.url}{path}", timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["data"]


@pytest.fixture(scope="module")
def prometheus(run: Run) -> Iterator[Prometheus]:
    """Debian's Prometheus on a free loopback port, scraping the stack every second."""
    binary = need("prometheus")
    folder = Path(tempfile.mkdtemp(prefix="obs-prometheus-"))
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(DEPLOY / "prometheus/alerts.yml")],
        "scrape_configs": [
            {"job_name": "api", "static_configs": [{"targets": [f"127.0.0.1:{run.stack.port}"]}]},
            {
                "job_name": "renderer",
                "static_configs": [{"targets": [f"127.0.0.1:{run.renderer_port}"]}],
            },
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(folder / "prometheus.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError((folder / "prometheus.log").read_text()[-3000:])
            try:
                return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        until_sync(ready, what="Prometheus to be ready")
        yield Prometheus(url)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def scripted(run: Run, prometheus: Prometheus) -> Run:
    """N rooms rendered once each (misses), then M repeats (memory hits), a few errors, and
    HEALTH_PROBES health checks on fresh connections (spread over both workers)."""
    s = run.stack
    for i in range(N_DISTINCT):
        r = s.call("POST", "/api/v1/rooms", "olivia", json={"name": f"Observed room {i}"})
        room = r.json()["id"]
        s.call("POST", f"/api/v1/rooms/{room}/messages", "olivia", json={"body": f"Entry {i}"})
        run.rooms.append(room)
    rooms = run.rooms + run.rooms[:M_REPEATS]
    for n, room in enumerate(rooms):
        headers = {"X-Request-ID": run.request_id} if n == 0 else {}
        r = s.call("POST", f"/api/v1/rooms/{room}/snapshots", "olivia", json={}, headers=headers)
        assert r.status_code == 202, r.text
        task = s.wait_task(r.json()["task_id"], "olivia")
        assert task["status"] == "completed", task
        run.tasks.append(task)
    assert [t["cache"] for t in run.tasks] == ["miss"] * N_DISTINCT + ["memory"] * M_REPEATS
    wrong = run.tasks[0]["snapshot_id"]  # not a task id: a 404 problem
    assert s.call("GET", f"/api/v1/tasks/{wrong}", "olivia").status_code == 404
    assert s.call("POST", f"/api/v1/rooms/{run.rooms[0]}/snapshots", "mallory").status_code == 404
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(lambda _: httpx.get(f"{s.base}/healthz").status_code, range(HEALTH_PROBES))
        )
    assert codes == [200] * HEALTH_PROBES
    return run


def api_metrics(run: Run) -> str:
    r = run.stack.call("GET", "/metrics")
    assert r.status_code == 200
    return r.text


def renderer_metrics(run: Run) -> str:
    r = httpx.get(f"http://127.0.0.1:{run.renderer_port}/metrics", timeout=10)
    assert r.status_code == 200
    return r.text


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        v for (n, ls), v in samples(text).items() if n == name and set(labels.items()) <= set(ls)
    )


# --- the tests ---------------------------------------------------------------------------------
def test_summary_agrees_with_the_scripted_run(scripted: Run):
    s = scripted.stack
    r = s.call("GET", "/api/v1/snapshots/metrics/summary", headers=s.auth("root", admin=True))
    assert r.status_code == 200, r.text
    summary = r.json()
    done = N_DISTINCT + M_REPEATS
    assert summary["tasks_by_status"] == {
        "queued": 0,
        "rendering": 0,
        "completed": done,
        "failed": 0,
    }
    cache = summary["cache"]
    assert cache["completed"] == done
    assert cache["hit_ratio"] == pytest.approx(M_REPEATS / done)
    assert {k: v["count"] for k, v in cache["by_layer"].items()} == {
        "memory": M_REPEATS,
        "disk": 0,
        "miss": N_DISTINCT,
    }
    assert cache["by_layer"]["miss"]["ratio"] == pytest.approx(N_DISTINCT / done)
    renders = summary["render_ms"]
    assert renders["renders"] == N_DISTINCT and 0 < renders["p50"] <= renders["p95"] < 60_000
    assert summary["render_jobs"]["messages"] == 0 and summary["render_jobs"]["consumers"] == 1
    assert summary["outbox_backlog"] == 0 and summary["dead_letter"]["jobs"] == 0
    assert summary["broker"] == "up" and summary["failed_by_code"] == {}
    forbidden = s.call("GET", "/api/v1/snapshots/metrics/summary", "olivia")
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"


def test_live_metrics_pass_promtool(scripted: Run):
    promtool = need("promtool")
    for name, text in (("api", api_metrics(scripted)), ("renderer", renderer_metrics(scripted))):
        result = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


def test_api_metrics_are_merged_across_workers_from_a_fresh_directory(scripted: Run):
    text = api_metrics(scripted)
    healthz = total(text, "snapshot_api_request_duration_seconds_count", route="/healthz")
    assert healthz == HEALTH_PROBES  # every request counted once, whichever worker answered
    folder = Path(scripted.stack.env["PROMETHEUS_MULTIPROC_DIR"])
    pids = {m.group(1) for f in folder.iterdir() if (m := re.search(r"_(\d+)\.db$", f.name))}
    assert len(pids) >= 2, sorted(f.name for f in folder.iterdir())  # both workers wrote values
    assert "999999" not in pids  # the stale file of an earlier run is gone ...
    created = total(text, "snapshot_api_snapshots_created_total", reused="false")
    assert created == N_DISTINCT + M_REPEATS  # ... and so is its value
    # Only the API writes there: the renderer's metrics stay in its own process.
    assert not [name for (name, _) in samples(text) if name.startswith("snapshot_renderer_")]
    completed = "snapshot_api_task_latency_seconds_count"
    assert total(text, completed, outcome="completed", cache="miss") == N_DISTINCT
    assert total(text, completed, outcome="completed", cache="memory") == M_REPEATS
    assert total(text, "snapshot_api_problems_total", code="not_found") == 2
    assert total(text, "snapshot_api_queue_consumers", queue="render.jobs") == 1


def test_renderer_metrics_count_renders_hits_and_the_recycled_worker(scripted: Run):
    text = renderer_metrics(scripted)
    assert total(text, "snapshot_renderer_render_duration_seconds_count") == N_DISTINCT
    assert total(text, "snapshot_renderer_pdf_pages_count") == N_DISTINCT
    assert total(text, "snapshot_renderer_pdf_bytes_sum") > 1000 * N_DISTINCT
    assert total(text, "snapshot_renderer_cache_requests_total", layer="memory", result="hit") == (
        M_REPEATS
    )
    # A miss reads the disk store twice (again under the render lock), so at least N misses.
    assert total(text, "snapshot_renderer_cache_requests_total", layer="disk", result="miss") >= (
        N_DISTINCT
    )
    assert total(text, "snapshot_renderer_cache_requests_total", layer="disk", result="hit") == 0
    assert total(text, "snapshot_renderer_cache_bytes", layer="memory") > 0
    assert total(text, "snapshot_renderer_jobs_in_flight") == 0
    outcomes = "snapshot_renderer_job_outcomes_total"
    assert total(text, outcomes, outcome="completed") == N_DISTINCT + M_REPEATS
    assert total(text, "snapshot_renderer_worker_recycles_total") == 1  # after the N-th render


def test_prometheus_counts_rendered_jobs(scripted: Run, prometheus: Prometheus):
    done = N_DISTINCT + M_REPEATS
    answer = until_sync(
        lambda: (v := prometheus.scalar(RENDERED_JOBS)) == done and v,
        what=f"Prometheus to answer {done} to {RENDERED_JOBS}",
    )
    print(f"\nPromQL: {RENDERED_JOBS}  ->  {answer:g}")
    renders = "sum(snapshot_renderer_render_duration_seconds_count)"
    until_sync(lambda: prometheus.scalar(renders) == N_DISTINCT, what=f"{renders} == {N_DISTINCT}")
    by_cache = 'sum by (cache) (snapshot_api_task_latency_seconds_count{outcome="completed"})'
    expected = {"miss": N_DISTINCT, "memory": M_REPEATS, "disk": 0}
    until_sync(
        lambda: (
            {r["metric"]["cache"]: float(r["value"][1]) for r in prometheus.query(by_cache)}
            == expected
        ),
        what=f"{by_cache} == {expected}",
    )
    up = "up"
    until_sync(
        lambda: (
            {r["metric"]["job"]: float(r["value"][1]) for r in prometheus.query(up)}
            == {"api": 1.0, "renderer": 1.0}
        ),
        what="both targets up",
    )


# --- names used by the dashboard and the alert rules -------------------------------------------
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
    "offset", "inf", "nan", "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar",
    "topk", "bottomk", "quantile", "count_values",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and labels dropped)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range and subquery selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", expr)
    names = set()
    for m in re.finditer(r"(?<![\w$.])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if m.group(0).lower() in _KEYWORDS or expr[m.end() :].lstrip().startswith("("):
            continue
        names.add(m.group(0))
    return names


def test_metric_name_extraction_is_not_fooled():
    expr = (
        'sum by (layer) (rate(a_total{result="hit",x=~"b|c"}[$__rate_interval])) / ignoring(le) '
        'group_left sum(rate(b_bucket[5m] offset 1m)) > 1e-9 or absent(up{job="r"} == 1) '
        "or histogram_quantile(0.95, sum by (le) (rate(c_seconds_bucket[5m]))) and on(x) vector(0)"
    )
    assert metric_names(expr) == {"a_total", "b_bucket", "up", "c_seconds_bucket"}


def dashboard_and_alert_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/snapshots.json").read_text())
    exprs = [
        t["expr"]
        for panel in dashboard["panels"]
        for sub in [panel, *panel.get("panels", [])]
        for t in sub.get("targets", [])
    ]
    alerts = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())
    exprs += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    return exprs


def test_dashboard_and_alert_metrics_are_exported_by_the_services(
    scripted: Run, prometheus: Prometheus
):
    exported = {
        "snapshot_api_": {name for name, _ in samples(api_metrics(scripted))},
        "snapshot_renderer_": {name for name, _ in samples(renderer_metrics(scripted))},
    }
    exprs = dashboard_and_alert_exprs()
    used = set().union(*(metric_names(e) for e in exprs))
    assert len(exprs) > 20 and len(used) > 15
    missing = []
    for name in sorted(used):
        prefix = next((p for p in exported if name.startswith(p)), None)
        if prefix is not None:
            if name not in exported[prefix]:
                missing.append(name)
        elif name not in BROKER_METRICS | PROMETHEUS_OWN:
            missing.append(name)
    assert not missing, f"used in deploy/ but not exported: {missing}"
    # And every expression is valid PromQL that the real Prometheus evaluates.
    for expr in exprs:
        prometheus.query(expr.replace("$__rate_interval", "1m").replace("$__range", "5m"))


# --- alert rules and logs --------------------------------------------------------------------
def _alerts(prometheus: Prometheus) -> dict[str, str]:
    return {
        a["labels"]["alertname"]: a["state"] for a in prometheus.get("/api/v1/alerts")["alerts"]
    }


def test_alert_rules_evaluate_cleanly_and_stay_quiet(scripted: Run, prometheus: Prometheus):
    def evaluated() -> list[dict[str, Any]] | None:
        rules = [r for g in prometheus.get("/api/v1/rules")["groups"] for r in g["rules"]]
        done = rules and all(not r["lastEvaluation"].startswith("0001") for r in rules)
        return rules if done else None

    rules = until_sync(evaluated, what="every alert rule to be evaluated")
    defined = re.findall(r"- alert:", (DEPLOY / "prometheus/alerts.yml").read_text())
    assert len(rules) == len(defined)
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
    until_sync(lambda: _alerts(prometheus) == {} or None, what="a healthy stack to raise no alert")


def test_logs_are_json_lines_with_request_and_task_ids(scripted: Run):
    def records(name: str) -> list[dict[str, Any]]:
        lines = (scripted.stack.logs / name).read_text().splitlines()
        parsed = []
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"{name}: not a JSON line: {line!r}")
        assert all({"at", "level", "logger", "event"} <= r.keys() for r in parsed)
        return parsed

    api = records("api.log")
    uvicorn = [r["event"] for r in api if r["logger"] == "uvicorn.error"]
    assert any(e.startswith("Started server process") for e in uvicorn)
    assert sum(e == "Application startup complete." for e in uvicorn) == 2  # both workers
    mine = [r for r in api if r.get("request_id") == scripted.request_id]
    assert any(r["logger"] == "snapshot_api.access" and r.get("status") == 202 for r in mine)
    first = scripted.tasks[0]["task_id"]
    renderer = records("renderer1.log")
    job = [r for r in renderer if r.get("task_id") == first and r["event"] == "job completed"]
    assert job and job[0]["request_id"] == scripted.request_id and job[0]["cache"] == "miss"


def test_no_renderer_alert_goes_pending_when_the_renderer_stops(
    scripted: Run, prometheus: Prometheus
):
    """Last: it stops the module's renderer."""
    until_sync(lambda: _alerts(prometheus) == {} or None, what="a quiet start")
    s = scripted.stack
    assert s.stop_renderer(s.renderers[0]) == 0
    state = until_sync(
        lambda: _alerts(prometheus).get("SnapshotNoRendererConsuming"),
        what="SnapshotNoRendererConsuming to become pending",
    )
    assert state == "pending"  # `for: 2m` keeps it from firing within a test
    r = s.call("GET", "/api/v1/snapshots/metrics/summary", headers=s.auth("root", admin=True))
    assert r.json()["render_jobs"]["consumers"] == 0
