"""The deployment files are valid for the tools that read them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is not installed (make test installs it as root: scripts/system-deps.sh)")
        pytest.skip(f"{tool} is not installed")
    return path


def test_docker_compose_file_is_valid():
    exe = require("docker-compose")
    env = {
        **os.environ,
        "POSTGRES_PASSWORD": "x",
        "GRAFANA_ADMIN_PASSWORD": "x",
        "FENGQIAO_PII_KEYS": "k1:x",
        "FENGQIAO_PII_INDEX_KEY": "x",
        "FENGQIAO_LINK_KEY": "x",
    }
    result = subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), "config"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for service in ("kafka", "postgres", "intake", "triage", "mediation", "notify", "prometheus", "grafana"):
        assert f"\n  {service}:\n" in result.stdout


def test_compose_refuses_to_start_without_secrets():
    exe = require("docker-compose")
    env = {k: v for k, v in os.environ.items() if k not in ("POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD")}
    result = subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert result.returncode != 0 and "POSTGRES_PASSWORD" in result.stderr


def test_prometheus_config_and_alert_rules_are_valid():
    exe = require("promtool")
    rules = subprocess.run(
        [exe, "check", "rules", str(ROOT / "deploy/prometheus/alerts.yml")], capture_output=True, text=True, timeout=60
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_dashboard_queries_use_only_metrics_the_services_export():
    from fengqiao.metrics import Metrics
    from mediation.metrics import MediationMetrics
    from notify.metrics import NotifyMetrics
    from triage.metrics import TriageMetrics

    metrics = Metrics("x")
    TriageMetrics.of(metrics)  # a service's own metrics live on the same registry
    MediationMetrics.of(metrics)
    NotifyMetrics.of(metrics)
    exported = {m.name for m in metrics.registry.collect()}
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/fengqiao-pipeline.json").read_text())
    import re

    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"fengqiao_[a-z_]+", target["expr"]):
                base = re.sub(r"_(bucket|count|sum|total)$", "", name)
                assert base in exported, f"{panel['title']}: {name} is not exported"


def test_the_images_run_the_documented_commands_as_typed():
    """docs/operations.md's first run: `docker compose run --rm mediation fengqiao ...` must run
    `fengqiao ...` itself, so the image has no entrypoint and each target's command is whole."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not [line for line in dockerfile.splitlines() if line.startswith("ENTRYPOINT")]
    commands = [json.loads(line.removeprefix("CMD ")) for line in dockerfile.splitlines() if line.startswith("CMD [")]
    assert len(commands) == 5 and all(c[0] == "fengqiao" for c in commands), commands
    guide = (ROOT / "docs/operations.md").read_text()
    assert "docker compose run --rm mediation fengqiao" in guide
