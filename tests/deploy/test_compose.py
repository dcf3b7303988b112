"""docker-compose.yml: no Docker engine runs here, so check its shape instead."""

from __future__ import annotations

import yaml

from tests.factories import REPO_ROOT


def load() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_services_and_healthchecks() -> None:
    services = load()["services"]
    assert set(services) >= {"postgres", "redis", "api", "worker"}
    for name in ("postgres", "redis", "api", "worker"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql") and env["BROKER_URL"].startswith(
            "redis"
        )
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "migrate" in " ".join(services["api"]["command"])
    assert services["worker"]["command"][:2] == ["prefaudit", "worker"]


def test_volumes_persist_state() -> None:
    compose = load()
    services = compose["services"]
    declared = set(compose["volumes"])
    assert any(v.startswith("pgdata:") for v in services["postgres"]["volumes"])
    for name in ("api", "worker"):
        # API and workers share the data directory (uploaded originals).
        assert "appdata:/data" in services[name]["volumes"]
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert used <= declared


def test_workers_reserve_a_gpu_and_can_scale() -> None:
    worker = load()["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    # `--scale worker=N` needs no fixed container name or host port on the worker.
    assert "container_name" not in worker and "ports" not in worker


def test_production_gets_its_secret_from_the_environment() -> None:
    """The API refuses PREFAUDIT_ENV=prod without a secret: compose must pass one, required."""
    services = load()["services"]
    for name in ("api", "worker"):
        secret = services[name]["environment"]["PREFAUDIT_SECRET_KEY"]
        assert secret.startswith("${PREFAUDIT_SECRET_KEY:?"), secret
