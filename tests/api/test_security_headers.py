"""Security headers on every response: the API, errors, the UI and the docs."""

from __future__ import annotations

import pytest

API = "/api/v1"


@pytest.mark.parametrize("path", [f"{API}/health", f"{API}/datasets", "/", "/no/such/page"])
def test_every_response_forbids_sniffing_framing_and_foreign_scripts(client, path) -> None:
    response = client.get(path)  # /datasets without a token: the 401 carries them too
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "script-src" not in policy or "'unsafe-inline'" not in policy.split("script-src")[1]


def test_the_docs_can_load_swagger_ui_but_not_be_framed(client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert response.headers["x-frame-options"] == "DENY"
