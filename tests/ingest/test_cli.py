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
