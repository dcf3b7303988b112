"""Security headers on every response: the API, errors, the UI and the docs."""

from __future__ import annotations

import re

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


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_are_served_here_under_the_apps_policy(client, path) -> None:
    """Swagger UI and ReDoc come from this server (no CDN), with no inline script, so they need
    no exemption from the app's Content-Security-Policy."""
    from backend.main import CONTENT_SECURITY_POLICY

    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    page = response.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/docs/") for s in sources), sources
    assert "<script>" not in page  # every script has a src: the policy allows no inline one
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 1000 or source.endswith("-init.js"), source
    assert "/api/v1/openapi.json" in page


@pytest.mark.parametrize("token", [None, "Bearer not-a-token"])
def test_a_malformed_body_without_a_valid_token_is_a_401_not_a_422(client, token) -> None:
    """The body is parsed before the auth dependency runs: an anonymous caller must not learn
    about the route's schema (or be told 422) before being told to authenticate."""
    headers = {"Content-Type": "application/json"} | ({"Authorization": token} if token else {})
    response = client.post(f"{API}/datasets/1/jobs", content=b"{not json", headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_with_a_valid_token_the_malformed_body_is_a_422(client, auth) -> None:
    headers = {"Content-Type": "application/json", **auth}
    response = client.post(f"{API}/datasets/1/jobs", content=b"{not json", headers=headers)
    assert response.status_code == 422 and "detail" in response.json()


def test_public_routes_keep_their_422(client) -> None:
    response = client.post(
        f"{API}/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
