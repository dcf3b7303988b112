"""Teams: a dataset shared as viewer or reviewer (what each may do, who decided), and the admin's
management of accounts. The full route × role matrix is tests/api/test_auth_matrix.py."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.factories import API, hh_records, jsonl_bytes, upload


@pytest.fixture
def team(client, make_user):
    """An owner with a 6-pair dataset, a reviewer and a viewer it is shared with, and a
    stranger."""
    owner, reviewer, viewer, stranger = (make_user() for _ in range(4))
    dataset = upload(client, owner["headers"], jsonl_bytes(hh_records(6)), "t.jsonl").json()
    for member, role in ((reviewer, "reviewer"), (viewer, "viewer")):
        response = client.put(
            f"{API}/datasets/{dataset['id']}/shares",
            headers=owner["headers"],
            json={"username": member["username"], "role": role},
        )
        assert response.status_code == 200, response.text
        assert response.json()["role"] == role
    pairs = client.get(f"{API}/datasets/{dataset['id']}/pairs", headers=owner["headers"]).json()
    return {
        "owner": owner,
        "reviewer": reviewer,
        "viewer": viewer,
        "stranger": stranger,
        "dataset": dataset,
        "pair_ids": [p["id"] for p in pairs["items"]],
    }


def test_the_shared_dataset_shows_with_each_members_role(client, team) -> None:
    dataset_id = team["dataset"]["id"]
    for who, role in (("owner", "owner"), ("reviewer", "reviewer"), ("viewer", "viewer")):
        listed = client.get(f"{API}/datasets", headers=team[who]["headers"]).json()["items"]
        mine = [d for d in listed if d["id"] == dataset_id]
        assert [d["role"] for d in mine] == [role], who
        assert mine[0]["owner_name"] == team["owner"]["username"]
        one = client.get(f"{API}/datasets/{dataset_id}", headers=team[who]["headers"]).json()
        assert one["role"] == role
    stranger = team["stranger"]["headers"]
    assert dataset_id not in [
        d["id"] for d in client.get(f"{API}/datasets", headers=stranger).json()["items"]
    ]
    assert client.get(f"{API}/datasets/{dataset_id}", headers=stranger).status_code == 404
    shares = client.get(f"{API}/datasets/{dataset_id}/shares", headers=team["owner"]["headers"])
    assert sorted((s["username"], s["role"]) for s in shares.json()) == sorted(
        [(team["reviewer"]["username"], "reviewer"), (team["viewer"]["username"], "viewer")]
    )


def test_a_reviewer_decides_and_is_recorded_a_viewer_only_reads(client, team) -> None:
    dataset_id, pair_id = team["dataset"]["id"], team["pair_ids"][0]
    review = f"{API}/datasets/{dataset_id}/pairs/{pair_id}/review"
    done = client.put(
        review, headers=team["reviewer"]["headers"], json={"state": "swapped", "note": "flip"}
    )
    assert done.status_code == 200, done.text
    assert done.json()["reviewed_by"] == team["reviewer"]["username"]

    viewer = team["viewer"]["headers"]
    refused = client.put(review, headers=viewer, json={"state": "kept"})
    assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
    bulk = client.post(
        f"{API}/datasets/{dataset_id}/review", headers=viewer, json={"action": "flag"}
    )
    assert bulk.status_code == 403
    # The viewer reads the decision (and who made it) and exports with it applied.
    pair = client.get(f"{API}/datasets/{dataset_id}/pairs/{pair_id}", headers=viewer).json()
    assert (pair["state"], pair["reviewed_by"]) == ("swapped", team["reviewer"]["username"])
    export = client.get(f"{API}/datasets/{dataset_id}/export?format=jsonl", headers=viewer)
    assert export.status_code == 200
    first = json.loads(export.content.splitlines()[0])
    original = hh_records(6)[0]
    assert (first["chosen"], first["rejected"]) == (original["rejected"], original["chosen"])

    # Only the owner deletes, audits and shares.
    for who in ("reviewer", "viewer"):
        headers = team[who]["headers"]
        assert client.delete(f"{API}/datasets/{dataset_id}", headers=headers).status_code == 403
        job = client.post(
            f"{API}/datasets/{dataset_id}/jobs", headers=headers, json={"model": "tiny"}
        )
        assert job.status_code == 403 and "owner" in job.json()["detail"]
        assert client.get(f"{API}/datasets/{dataset_id}/shares", headers=headers).status_code == 403


def test_unsharing_hides_the_dataset_and_keeps_the_decisions(client, team) -> None:
    dataset_id, pair_id = team["dataset"]["id"], team["pair_ids"][1]
    reviewer = team["reviewer"]
    client.put(
        f"{API}/datasets/{dataset_id}/pairs/{pair_id}/flag",
        headers=reviewer["headers"],
        json={"flagged": True},
    )
    me = client.get(f"{API}/users/me", headers=reviewer["headers"]).json()
    owner = team["owner"]["headers"]
    assert (
        client.delete(f"{API}/datasets/{dataset_id}/shares/{me['id']}", headers=owner).status_code
        == 204
    )
    assert (
        client.get(f"{API}/datasets/{dataset_id}", headers=reviewer["headers"]).status_code == 404
    )
    pair = client.get(f"{API}/datasets/{dataset_id}/pairs/{pair_id}", headers=owner).json()
    assert (pair["state"], pair["reviewed_by"]) == ("flagged", reviewer["username"])
    again = client.delete(f"{API}/datasets/{dataset_id}/shares/{me['id']}", headers=owner)
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"username": "nobody-with-this-name", "role": "viewer"}, 404, "no user is named"),
        ({"username": "OWNER", "role": "viewer"}, 422, "owns dataset"),
        ({"username": "REVIEWER", "role": "admin"}, 422, "viewer"),
        ({"username": "", "role": "viewer"}, 422, "username"),
    ],
)
def test_a_bad_share_is_refused_saying_why(client, team, body, status, fragment) -> None:
    body = {
        **body,
        "username": {
            "OWNER": team["owner"]["username"],
            "REVIEWER": team["reviewer"]["username"],
        }.get(body["username"], body["username"]),
    }
    response = client.put(
        f"{API}/datasets/{team['dataset']['id']}/shares",
        headers=team["owner"]["headers"],
        json=body,
    )
    assert response.status_code == status, response.text
    assert fragment in response.text


@pytest.fixture
def admin(client, database) -> dict:
    from backend.db import session_scope
    from backend.services.users import create_user, issue_token

    username = f"admin-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        user = create_user(session, username, "admin-password", is_admin=True)
        token = issue_token(session, user, "admin")
        user_id = user.id
    return {"id": user_id, "username": username, "headers": {"Authorization": f"Bearer {token}"}}


def test_only_an_admin_manages_accounts(client, admin, make_user) -> None:
    plain = make_user()
    assert client.get(f"{API}/admin/users", headers=plain["headers"]).status_code == 403
    headers = admin["headers"]
    name = f"new-{uuid.uuid4().hex[:8]}"
    made = client.post(
        f"{API}/admin/users", headers=headers, json={"username": name, "password": "first-password"}
    )
    assert made.status_code == 201, made.text
    user_id = made.json()["id"]
    duplicate = client.post(
        f"{API}/admin/users", headers=headers, json={"username": name, "password": "first-password"}
    )
    assert duplicate.status_code == 409
    short = client.post(
        f"{API}/admin/users", headers=headers, json={"username": "x", "password": "short"}
    )
    assert short.status_code == 422
    listed = {u["username"]: u for u in client.get(f"{API}/admin/users", headers=headers).json()}
    assert listed[name]["is_admin"] is False and listed[name]["n_datasets"] == 0

    # The new user logs in; a new password ends that session.
    login = client.post(f"{API}/auth/login", json={"username": name, "password": "first-password"})
    session_headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert client.get(f"{API}/users/me", headers=session_headers).status_code == 200
    changed = client.patch(
        f"{API}/admin/users/{user_id}",
        headers=headers,
        json={"password": "second-password", "is_admin": True},
    )
    assert changed.status_code == 200 and changed.json()["is_admin"] is True
    assert client.get(f"{API}/users/me", headers=session_headers).status_code == 401
    relog = client.post(f"{API}/auth/login", json={"username": name, "password": "second-password"})
    assert relog.status_code == 200

    # An admin keeps their own right and account; an account with datasets stays.
    own = client.patch(
        f"{API}/admin/users/{admin['id']}", headers=headers, json={"is_admin": False}
    )
    assert own.status_code == 422 and "your own admin right" in own.json()["detail"]
    assert client.delete(f"{API}/admin/users/{admin['id']}", headers=headers).status_code == 422
    upload(client, plain["headers"], jsonl_bytes(hh_records(3)), "p.jsonl")
    plain_id = client.get(f"{API}/users/me", headers=plain["headers"]).json()["id"]
    busy = client.delete(f"{API}/admin/users/{plain_id}", headers=headers)
    assert busy.status_code == 422 and "owns 1 dataset" in busy.json()["detail"]
    assert client.delete(f"{API}/admin/users/{user_id}", headers=headers).status_code == 204
    assert client.delete(f"{API}/admin/users/{user_id}", headers=headers).status_code == 404
    assert (
        client.post(
            f"{API}/auth/login", json={"username": name, "password": "second-password"}
        ).status_code
        == 401
    )


def test_deleting_the_dataset_removes_its_shares(client, team) -> None:
    from sqlalchemy import func, select

    from backend.db import session_scope
    from backend.models import DatasetShare

    dataset_id = team["dataset"]["id"]

    def n_shares() -> int:
        with session_scope() as session:
            query = select(func.count()).where(DatasetShare.dataset_id == dataset_id)
            return session.scalar(query) or 0

    assert n_shares() == 2
    response = client.delete(f"{API}/datasets/{dataset_id}", headers=team["owner"]["headers"])
    assert response.status_code == 204
    assert n_shares() == 0
    assert (
        client.get(f"{API}/datasets/{dataset_id}", headers=team["viewer"]["headers"]).status_code
        == 404
    )


def test_names_the_database_cannot_hold_are_422s(client, team, admin) -> None:
    shared = client.put(
        f"{API}/datasets/{team['dataset']['id']}/shares",
        headers=team["owner"]["headers"],
        json={"username": "bob\x00", "role": "viewer"},
    )
    assert shared.status_code == 422 and "NUL character" in shared.json()["detail"]
    made = client.post(
        f"{API}/admin/users",
        headers=admin["headers"],
        json={"username": "tab\tname", "password": "long-enough-password"},
    )
    assert made.status_code == 422 and "control characters" in made.json()["detail"]


def test_a_reviewer_undoes_only_their_own_actions_the_owner_any(client, team) -> None:
    dataset_id, (first, second) = team["dataset"]["id"], team["pair_ids"][:2]
    owner, reviewer = team["owner"]["headers"], team["reviewer"]["headers"]
    undo = f"{API}/datasets/{dataset_id}/review/undo"

    def decide(headers, pair_id, state):
        url = f"{API}/datasets/{dataset_id}/pairs/{pair_id}/review"
        assert client.put(url, headers=headers, json={"state": state}).status_code == 200

    def state(pair_id):
        url = f"{API}/datasets/{dataset_id}/pairs/{pair_id}"
        return client.get(url, headers=owner).json()["state"]

    decide(reviewer, first, "flagged")
    assert client.post(undo, headers=reviewer).status_code == 200  # their own
    assert state(first) == "unreviewed"
    decide(owner, second, "kept")
    refused = client.post(undo, headers=reviewer)
    assert refused.status_code == 403
    assert team["owner"]["username"] in refused.json()["detail"] and state(second) == "kept"
    decide(reviewer, first, "swapped")
    assert client.post(undo, headers=owner).status_code == 200  # the owner undoes anyone's
    assert state(first) == "unreviewed"


def test_production_marks_the_session_cookies_secure_behind_a_plain_http_proxy(
    client, make_user
) -> None:
    from fastapi.testclient import TestClient

    from backend.settings import get_settings

    user = make_user()
    prod = get_settings().model_copy(update={"env": "prod"})
    client.app.dependency_overrides[get_settings] = lambda: prod
    try:
        with TestClient(client.app) as browser:  # http://testserver
            login = browser.post(
                f"{API}/auth/login",
                json={"username": user["username"], "password": user["password"], "cookie": True},
            )
    finally:
        client.app.dependency_overrides.pop(get_settings, None)
    assert login.status_code == 200
    assert all("Secure" in c for c in login.headers.get_list("set-cookie"))


def test_the_last_admin_keeps_the_right_even_when_another_admin_withdraws_it(tmp_path) -> None:
    """Two admins withdrawing each other's right: the second request (its caller no longer an
    admin, though authorised a moment before) cannot leave the instance without one."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from backend.models import Base
    from backend.services import teams
    from backend.services.users import create_user

    engine = create_engine(f"sqlite:///{tmp_path / 'admins.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        a = create_user(session, "a", "a-password", is_admin=True)
        b = create_user(session, "b", "b-password", is_admin=True)
        session.commit()
        teams.update_user(session, a, b.id, is_admin=False, password=None)  # a withdraws b's
        with pytest.raises(teams.TeamError, match="last admin"):
            teams.update_user(session, b, a.id, is_admin=False, password=None)  # b's, late
        with pytest.raises(teams.TeamError, match="last admin"):
            teams.remove_user(session, b, a.id)
        assert session.get(type(a), a.id).is_admin
