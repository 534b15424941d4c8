"""deploy/: the Grafana dashboard and Prometheus config agree with the code.

Every ``stratlab_*`` series a dashboard query names is one the lab exports (by its metric
definitions); the ``temporal_*`` ones are checked against a real worker's /metrics in
``tests/integration/test_worker_observability.py``.
"""

from __future__ import annotations

import json

import yaml

from stratlab.telemetry.metrics import METRICS
from tests.fixtures.dashboard import DASHBOARD, DEPLOY, SERIES, dashboard_queries
from workflows.constants import POOLS


def dashboard_series(prefix: str) -> set[str]:
    return {
        name for q in dashboard_queries() for name in SERIES.findall(q) if name.startswith(prefix)
    }


def test_the_dashboard_is_a_grafana_dashboard_with_a_query_in_every_panel() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "stratlab" and board["schemaVersion"] >= 30
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len(panels) >= 20
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            assert SERIES.search(target["expr"]), (panel["title"], target["expr"])
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    (variable,) = board["templating"]["list"]
    assert variable["current"]["value"] == datasource["uid"]
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "stratlab.yml").read_text()
    )["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_every_lab_series_the_dashboard_queries_is_exported_by_the_code() -> None:
    exported = {name for metric in METRICS for name in metric.exported()}
    used = dashboard_series("stratlab_")
    assert used and used <= exported, used - exported
    # And the dashboard shows every metric the lab defines.
    shown = {m.name for m in METRICS if set(m.exported()) & used}
    assert shown == {m.name for m in METRICS}


def test_the_dashboard_covers_seed_002s_list() -> None:
    titles = " ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for wanted in ("phase", "outcome", "gate pass rate", "daily spend", "error", "latency"):
        assert wanted in titles, wanted


def test_prometheus_scrapes_every_pool_on_the_metrics_port() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # The Temporal server of docker-compose.yml is scraped too, at its PROMETHEUS_ENDPOINT.
    assert jobs.pop("temporal")["static_configs"] == [{"targets": ["temporal:8000"]}]
    assert set(jobs) == set(POOLS)
    for pool, job in jobs.items():
        (discovery,) = job["dns_sd_configs"]
        assert discovery["names"] == [pool] and discovery["type"] == "A"
        assert discovery["port"] == 9464
