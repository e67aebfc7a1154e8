"""deploy/: every metric the alert rules and the Grafana dashboard query exists in /metrics,
and promtool accepts the rules."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from killswitch.services import killswitch_activate
from reconciliation.models import WorkerHeartbeat
from tradingstate.actors import Actor
from tradingstate.models import ExchangeAccount

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tradingstate.json"
METRIC = re.compile(r"\btradingstate_[a-z0-9_]+")


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for g in groups for rule in g["rules"]]


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dash["templating"]["list"] if v.get("definition")]
    return exprs


@pytest.mark.django_db
def test_every_metric_used_by_rules_and_dashboard_is_exported(client):
    # given: a state where every family has samples (a pass, a halt, a heartbeat)
    call_command("demo")
    call_command("reconcile", "--account", "paper-demo")
    account = ExchangeAccount.objects.get(name="paper-demo")
    killswitch_activate(reason="drill", actor=Actor.system("test"), account=account)
    WorkerHeartbeat.objects.create(role="ticker", holder="h:1", beat_at=timezone.now())
    # when
    text = client.get("/metrics").content.decode()
    exported = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    # then
    used = {m for e in rule_exprs() + dashboard_exprs() for m in METRIC.findall(e)}
    assert len(used) >= 10, used
    assert not used - exported, f"queried but not exported: {sorted(used - exported)}"
    # the fixed names and labels
    assert 'tradingstate_killswitch_active{account="paper-demo",scope="account"} 1.0' in text
    assert "tradingstate_last_pass_age_seconds" not in text
    assert re.search(r'tradingstate_build_info\{django="[^"]+",python="[^"]+",version="', text)


def test_dashboard_panels_cover_the_operations_view():
    titles = " | ".join(p["title"] for p in json.loads(DASHBOARD.read_text())["panels"])
    for word in ("Passes", "latency", "Discrepancies", "Repairs", "Halts", "P&L"):
        assert word in titles, titles


def test_promtool_accepts_the_rules():
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    proc = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 7 rules found" in proc.stdout
