"""The passes yield the CPU to the bots' API in the shipped compose deployment too.

``[worker] nice`` lowers the pass threads' priority among the processes scheduled with
them; docker compose runs each service in its own cgroup, where only the services' CPU
weights (``cpu_shares``, default 1024) divide the CPU between the web and the worker."""

from pathlib import Path

import yaml

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
DEFAULT_SHARES = 1024


def _shares(service: str) -> int:
    return int(COMPOSE["services"][service].get("cpu_shares", DEFAULT_SHARES))


def test_the_worker_service_weighs_less_than_the_api():
    # the trading service is the worker (and the ticker), without the web
    command = COMPOSE["services"]["trading"]["command"]
    assert "scripts/run_paper.py" in command and "--no-web" in command
    assert _shares("trading") * 4 <= _shares("web")


def test_the_api_and_the_databases_keep_the_default_weight():
    for service in ("web", "postgres", "redis"):
        assert _shares(service) == DEFAULT_SHARES, service
