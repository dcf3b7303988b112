"""JSON bodies with text that is not Unicode (a lone UTF-16 surrogate, which JSON can escape):
a clear 422, never a server error."""

from __future__ import annotations

API = "/api/v1"


def test_a_lone_surrogate_in_a_refused_body_is_echoed_as_a_replacement_character(client) -> None:
    """JSON may escape a lone UTF-16 surrogate; the 422 that echoes the input must not crash."""
    body = b'{"username": "\\ud800", "password": 5}'
    response = client.post(
        f"{API}/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    echoed = {error["loc"][-1]: error.get("input") for error in response.json()["detail"]}
    assert echoed["password"] == 5


def test_a_lone_surrogate_in_a_text_field_is_refused_where_it_is(client) -> None:
    body = b'{"username": "\\ud800", "password": "whatever-password"}'
    response = client.post(
        f"{API}/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "username"] and error["type"] == "string_unicode"
    assert error["input"] == "\ufffd"
