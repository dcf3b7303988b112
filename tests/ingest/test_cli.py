"""The `prefaudit` command: users, tokens, OpenAPI, help."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from backend.cli import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "worker", "migrate", "create-user", "create-token", "score", "run"):
        assert command in result.output


def test_create_user_and_token_then_use_it(client) -> None:
    created = runner.invoke(app, ["create-user", "cli-user", "--password", "long-enough-pw"])
    assert created.exit_code == 0, created.output
    again = runner.invoke(app, ["create-user", "cli-user", "--password", "long-enough-pw"])
    assert again.exit_code == 1 and "already exists" in again.output
    token = runner.invoke(app, ["create-token", "cli-user"])
    assert token.exit_code == 0
    headers = {"Authorization": f"Bearer {token.output.strip()}"}
    assert client.get("/api/v1/users/me", headers=headers).json()["username"] == "cli-user"
    missing = runner.invoke(app, ["create-token", "nobody"])
    assert missing.exit_code == 1 and "no user" in missing.output


def test_openapi_documents_the_api(tmp_path) -> None:
    out = tmp_path / "openapi.json"
    assert runner.invoke(app, ["openapi", "--out", str(out)]).exit_code == 0
    spec = json.loads(out.read_text())
    paths = spec["paths"]
    for path in (
        "/api/v1/datasets",
        "/api/v1/datasets/{dataset_id}",
        "/api/v1/datasets/{dataset_id}/pairs",
        "/api/v1/datasets/{dataset_id}/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/datasets/{dataset_id}/pairs/{pair_id}/flag",
        "/api/v1/datasets/{dataset_id}/flags",
        "/api/v1/datasets/{dataset_id}/export",
    ):
        assert path in paths, path
    job_options = spec["components"]["schemas"]["AuditCreate"]["properties"]
    assert job_options["model"]["default"] == "minilm" and job_options["damping"]["description"]


def test_serve_with_worker_stops_its_worker_before_it_exits(tmp_path) -> None:
    """SIGTERM to `serve --with-worker` (a stack stopped by its supervisor): the server ends
    only once its worker has, so whoever removes the data afterwards (the e2e stack removes the
    broker folder) cannot pull it from under a worker still shutting down. uvicorn raises the
    signal again after its shutdown; with the default handler that ended the server at once."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    import psutil

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path}/stack.db",
        "BROKER_URL": "filesystem://",
        "PREFAUDIT_DATA_DIR": str(tmp_path),
        "PREFAUDIT_REAPER_INTERVAL_SECONDS": "0",
    }
    cli = [sys.executable, "-m", "backend.cli"]
    subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    server = subprocess.Popen(
        [*cli, "serve", "--port", str(port), "--with-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.2)
        worker = psutil.Process(server.pid).children(recursive=True)
        assert worker, "serve --with-worker started no worker"
        server.send_signal(15)
        assert server.wait(timeout=90) == 143
        still = [p for p in worker if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert still == [], f"the server exited before its worker: {still}"
    finally:
        if server.poll() is None:
            server.kill()
        for process in worker:  # a worker left behind (a failed run) goes too
            if process.is_running():
                process.kill()
