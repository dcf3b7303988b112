"""The auth matrix, generated from the OpenAPI schema: every operation × {no token, a garbage
token, an expired token, another user's token, a viewer's, a reviewer's, the owner's, and the
owner's browser cookie without its CSRF header}. Without a valid token every route but health
and login answers 401; another user gets 404 for the owner's resources (they stay invisible); a
viewer may read and export, a reviewer also review, and each gets 403 for what their role does
not allow; only an admin manages users (403 for everyone else); a change with the session
cookie alone is a 403. After every refused call the database is unchanged; the owner (an admin
here) and each role get past authorisation where they are allowed.

A new route fails `test_every_operation_is_in_the_matrix` until its request is described here.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import hh_records, jsonl_bytes

API = "/api/v1"
PUBLIC = {("GET", f"{API}/health"), ("POST", f"{API}/auth/login")}

# How to call each operation: a JSON body, form/files, query parameters.
REQUESTS: dict[tuple[str, str], dict] = {
    ("POST", "/auth/logout"): {},
    ("GET", "/users/me"): {},
    ("GET", "/tokens"): {},
    ("POST", "/tokens"): {"json": {"name": "matrix"}},
    ("DELETE", "/tokens/{token_id}"): {},
    # The owner's own password, kept: the change ends the owner's other tokens (spare, expired),
    # which the rows after it no longer need.
    ("PUT", "/users/me/password"): {
        "json": {"current_password": "owner-password", "new_password": "owner-password"}
    },
    # The caller's own judge key: set, read (never echoed), cleared.
    ("PUT", "/me/secrets/judge-api-key"): {"json": {"value": "matrix-judge-key"}},
    ("GET", "/me/secrets/judge-api-key"): {},
    ("DELETE", "/me/secrets/judge-api-key"): {},
    ("POST", "/datasets"): {"files": {"file": ("m.jsonl", jsonl_bytes(hh_records(3)))}},
    ("POST", "/datasets/preview"): {"files": {"file": ("m.jsonl", jsonl_bytes(hh_records(3)))}},
    ("GET", "/datasets"): {},
    ("GET", "/datasets/{dataset_id}"): {},
    ("DELETE", "/datasets/{dataset_id}"): {},
    ("GET", "/datasets/{dataset_id}/pairs"): {},
    ("GET", "/datasets/{dataset_id}/pairs/{pair_id}/interactions"): {"params": {"job_id": "JOB"}},
    ("PUT", "/datasets/{dataset_id}/pairs/{pair_id}/flag"): {"json": {"flagged": True}},
    ("GET", "/datasets/{dataset_id}/pairs/{pair_id}"): {},
    ("GET", "/datasets/{dataset_id}/pairs/{pair_id}/history"): {},
    ("PUT", "/datasets/{dataset_id}/pairs/{pair_id}/review"): {"json": {"state": "kept"}},
    ("POST", "/datasets/{dataset_id}/review"): {"json": {"action": "flag"}},
    ("POST", "/datasets/{dataset_id}/review/undo"): {},
    ("GET", "/datasets/{dataset_id}/review/actions"): {},
    ("GET", "/datasets/{dataset_id}/review-log"): {},
    ("POST", "/datasets/{dataset_id}/flags"): {"json": {"job_id": "JOB"}},
    ("DELETE", "/datasets/{dataset_id}/flags"): {},
    ("GET", "/datasets/{dataset_id}/export"): {},
    ("POST", "/datasets/{dataset_id}/jobs"): {"json": {"model": "tiny"}},
    ("GET", "/datasets/{dataset_id}/jobs"): {},
    ("GET", "/jobs/{job_id}"): {},
    ("POST", "/jobs/{job_id}/cancel"): {},
    ("GET", "/jobs/{job_id}/histogram"): {},
    ("GET", "/methods"): {},
    ("GET", "/methods/columns"): {},
    ("GET", "/methods/tags"): {},
    ("GET", "/saved-models"): {},
    ("GET", "/judge/defaults"): {},
    ("POST", "/datasets/{dataset_id}/judge/estimate"): {
        "json": {"base_url": "http://127.0.0.1:9/v1", "model": "matrix"}
    },
    ("POST", "/datasets/{dataset_id}/judge"): {
        "json": {"base_url": "http://127.0.0.1:9/v1", "model": "matrix"}
    },
    ("POST", "/datasets/{dataset_id}/target-sets"): {"json": {"source": {"kind": "reviewed"}}},
    ("GET", "/datasets/{dataset_id}/target-sets"): {},
    ("GET", "/datasets/{dataset_id}/target-sets/{target_set_id}"): {},
    ("DELETE", "/datasets/{dataset_id}/target-sets/{target_set_id}"): {},
    ("GET", "/datasets/{dataset_id}/target-comparison"): {
        "params": {"job_a": "JOB", "job_b": "JOB"}
    },
    ("POST", "/datasets/{dataset_id}/checks/contamination"): {
        "json": {"eval_dataset_id": "DATASET"}
    },
    ("GET", "/datasets/{dataset_id}/shares"): {},
    ("PUT", "/datasets/{dataset_id}/shares"): {"json": {"username": "SPARE", "role": "viewer"}},
    ("DELETE", "/datasets/{dataset_id}/shares/{user_id}"): {},
    # To its owner: a 422 that gets past authorisation and moves nothing (tests/api/
    # test_need_to_know.py transfers for real).
    ("POST", "/datasets/{dataset_id}/transfer"): {"json": {"username": "SELF"}},
    ("GET", "/admin/users"): {},
    ("POST", "/admin/users"): {"json": {"username": "NEW", "password": "a-long-password"}},
    ("PATCH", "/admin/users/{user_id}"): {"json": {"is_admin": False}},
    ("DELETE", "/admin/users/{user_id}"): {},  # last: the spare user goes
}
OWNED = {"dataset_id", "pair_id", "job_id", "token_id", "target_set_id"}
ROLES = ("viewer", "reviewer", "owner")
OWNER_ONLY = {
    ("DELETE", "/datasets/{dataset_id}"),
    ("POST", "/datasets/{dataset_id}/jobs"),
    ("POST", "/jobs/{job_id}/cancel"),
    ("GET", "/datasets/{dataset_id}/shares"),
    ("PUT", "/datasets/{dataset_id}/shares"),
    ("DELETE", "/datasets/{dataset_id}/shares/{user_id}"),
    ("POST", "/datasets/{dataset_id}/transfer"),
    ("POST", "/datasets/{dataset_id}/judge/estimate"),
    ("POST", "/datasets/{dataset_id}/judge"),
    ("POST", "/datasets/{dataset_id}/target-sets"),
    ("DELETE", "/datasets/{dataset_id}/target-sets/{target_set_id}"),
}
REVIEWER = {
    ("PUT", "/datasets/{dataset_id}/pairs/{pair_id}/flag"),
    ("PUT", "/datasets/{dataset_id}/pairs/{pair_id}/review"),
    ("POST", "/datasets/{dataset_id}/review"),
    ("POST", "/datasets/{dataset_id}/review/undo"),
    ("POST", "/datasets/{dataset_id}/flags"),
    ("DELETE", "/datasets/{dataset_id}/flags"),
    ("POST", "/datasets/{dataset_id}/checks/contamination"),
}


def needs(method: str, path: str) -> str | None:
    """The role a dataset or job route needs ('admin' for account management), or None: the
    route acts on the caller's own account."""
    if path.startswith("/admin/"):
        return "admin"
    if (method, path) in OWNER_ONLY:
        return "owner"
    if (method, path) in REVIEWER:
        return "reviewer"
    return "viewer" if "{dataset_id}" in path or "{job_id}" in path else None


def _operations(app) -> list[tuple[str, str]]:
    spec = app.openapi()
    return [
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if (method.upper(), path) not in PUBLIC
    ]


def test_every_operation_is_in_the_matrix(client) -> None:
    described = {(m, API + p) for m, p in REQUESTS}
    assert set(_operations(client.app)) == described


@pytest.fixture(scope="module")
def world(client, database):
    """An owner with a dataset, a (finished, scoreless) job and tokens; another user; an expired
    token of the owner."""
    from backend.db import session_scope
    from backend.models import ApiToken, DatasetShare, Job, Pair, TargetSet, User, utcnow
    from backend.services.users import create_user, issue_token

    with session_scope() as session:
        tag = uuid.uuid4().hex[:8]
        owner = create_user(session, f"matrix-owner-{tag}", "owner-password", is_admin=True)
        other = create_user(session, f"matrix-other-{tag}", "other-password")
        viewer = create_user(session, f"matrix-viewer-{tag}", "viewer-password")
        reviewer = create_user(session, f"matrix-reviewer-{tag}", "reviewer-password")
        spare_user = create_user(session, f"matrix-spare-{tag}", "spare-password")
        viewer_token = issue_token(session, viewer, "viewer")
        reviewer_token = issue_token(session, reviewer, "reviewer")
        spare_user_id = spare_user.id
        role_ids = {"viewer": viewer.id, "reviewer": reviewer.id, "spare": spare_user.id}
        owner_token = issue_token(session, owner, "owner")
        spare = issue_token(session, owner, "spare")
        other_token = issue_token(session, other, "other")
        expired = issue_token(session, owner, "expired", timedelta(days=1))
        session.scalar(select(ApiToken).where(ApiToken.name == "expired")).expires_at = (
            utcnow() - timedelta(seconds=1)
        )
        owner_id = owner.id
    headers = {"Authorization": f"Bearer {owner_token}"}
    dataset = client.post(
        f"{API}/datasets", headers=headers, files={"file": ("o.jsonl", jsonl_bytes(hh_records(5)))}
    ).json()
    with session_scope() as session:
        job = Job(
            dataset_id=dataset["id"],
            owner_id=owner_id,
            kind="audit",
            config={"model": "tiny", "methods": ["loss"]},
            status="succeeded",
        )
        session.add(job)
        for role, user_id in role_ids.items():
            session.add(
                DatasetShare(
                    dataset_id=dataset["id"],
                    user_id=user_id,
                    role="viewer" if role == "spare" else role,
                )
            )
        # A target set written directly: the dataset's 5 pairs are too few to build one (20-500).
        target = TargetSet(
            dataset_id=dataset["id"], owner_id=owner_id, name="matrix", source="pairs", n_pairs=0
        )
        session.add(target)
        session.flush()
        ids = {
            "target_set_id": target.id,
            "user_id": spare_user_id,
            "dataset_id": dataset["id"],
            "job_id": job.id,
            "pair_id": session.scalar(select(Pair.id).where(Pair.dataset_id == dataset["id"])),
            "token_id": session.scalar(
                select(ApiToken.id).where(ApiToken.name == "spare", ApiToken.user_id == owner_id)
            ),
        }
        assert session.scalar(select(User.id).where(User.username == f"matrix-other-{tag}"))
    del spare
    yield {
        "ids": ids,
        "tokens": {
            "none": None,
            "garbage": "pfa_not-a-real-token",
            "expired": expired,
            "other user": other_token,
            "viewer": viewer_token,
            "reviewer": reviewer_token,
            "owner": owner_token,
        },
        "names": {
            "SPARE": f"matrix-spare-{tag}",
            "NEW": f"matrix-new-{tag}",
            "SELF": f"matrix-owner-{tag}",
        },
    }
    # Jobs the owner's calls queued must not reach a later test's worker.
    from sqlalchemy import update

    with session_scope() as session:
        session.execute(
            update(Job)
            .where(Job.owner_id == owner_id, Job.status.in_(("queued", "running")))
            .values(status="cancelled")
        )


def _snapshot() -> tuple:
    from backend import models
    from backend.db import session_scope

    tables = ("ApiToken", "Dataset", "Flag", "Interaction", "Job", "Pair", "Score")
    tables += ("ReviewAction", "ReviewEvent", "User", "DatasetShare", "TargetSet", "PairTag")
    Flag, Job = models.Flag, models.Job  # noqa: N806
    with session_scope() as session:
        counts = tuple(
            session.scalar(select(func.count()).select_from(getattr(models, name)))
            for name in tables
        )
        flags = tuple(session.execute(select(Flag.pair_id, Flag.state, Flag.note)).all())
        jobs = tuple(session.execute(select(Job.id, Job.status)).all())
        shares = tuple(
            session.execute(select(models.DatasetShare.user_id, models.DatasetShare.role)).all()
        )
        admins = tuple(session.scalars(select(models.User.id).where(models.User.is_admin)))
    return counts, flags, jobs, shares, admins


def _call(client, world, method: str, path: str, token: str | None, cookie: str | None = None):
    request = REQUESTS[(method, path)]
    url = API + path.format(**world["ids"])
    kwargs = {}
    for key in ("json", "params"):
        if key in request:
            kwargs[key] = {
                k: world["ids"]["job_id"]
                if v == "JOB"
                else world["ids"]["dataset_id"]
                if v == "DATASET"
                else world["names"].get(v, v)
                if isinstance(v, str)
                else v
                for k, v in request[key].items()
            }
    if "files" in request:
        kwargs["files"] = request["files"]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if cookie is not None:  # the browser's session cookie, without its CSRF header
        headers = {"Cookie": f"prefaudit_session={cookie}"}
    return client.request(method, url, headers=headers, **kwargs)


def _owned(path: str) -> bool:
    return any("{" + name + "}" in path for name in OWNED)


def expected_refusal(identity: str, method: str, path: str) -> int | None:
    """The status refusing `identity` this call, or None: they are allowed."""
    if identity in ("none", "garbage", "expired"):
        return 401
    if identity == "cookie without CSRF":
        return 403 if method not in ("GET", "HEAD", "OPTIONS") else None
    need = needs(method, path)
    if need == "admin":
        return 403  # none of these identities is an admin
    if identity == "other user":
        return 404 if _owned(path) else None  # the owner's resources stay invisible
    if "{token_id}" in path:
        return 404  # a viewer or reviewer cannot see the owner's tokens
    if need is None:
        return None  # their own account
    return 403 if ROLES.index(identity) < ROLES.index(need) else None


IDENTITIES = ("none", "garbage", "expired", "other user", "viewer", "reviewer")
IDENTITIES += ("cookie without CSRF",)
REFUSALS = [
    (identity, method, path)
    for method, path in REQUESTS
    for identity in IDENTITIES
    if expected_refusal(identity, method, path) is not None
]
# Deleting the dataset, its target set or logging out would remove what the other rows need
# (tested elsewhere).
REMOVES = {("DELETE", "/datasets/{dataset_id}"), ("POST", "/auth/logout")}
REMOVES.add(("DELETE", "/datasets/{dataset_id}/target-sets/{target_set_id}"))
OWNER_CALLS = [key for key in REQUESTS if key not in REMOVES]
ROLE_CALLS = [
    (identity, method, path)
    for method, path in OWNER_CALLS
    for identity in ("viewer", "reviewer")
    if needs(method, path) in ("viewer", "reviewer")
    and expected_refusal(identity, method, path) is None
]


@pytest.mark.parametrize(("identity", "method", "path"), REFUSALS)
def test_a_refused_call_changes_nothing(client, world, method, path, identity) -> None:
    before = _snapshot()
    if identity == "cookie without CSRF":
        response = _call(client, world, method, path, None, cookie=world["tokens"]["owner"])
    else:
        response = _call(client, world, method, path, world["tokens"][identity])
    expected = expected_refusal(identity, method, path)
    assert response.status_code == expected, (identity, method, path, response.text)
    assert "detail" in response.json()
    assert _snapshot() == before, f"{identity} {method} {path} changed the database"


@pytest.mark.parametrize(("method", "path"), OWNER_CALLS)
def test_the_owner_gets_past_authorisation(client, world, method, path) -> None:
    response = _call(client, world, method, path, world["tokens"]["owner"])
    assert response.status_code not in (401, 403, 404), (method, path, response.text)


@pytest.mark.parametrize(("identity", "method", "path"), ROLE_CALLS)
def test_a_role_gets_past_authorisation_where_it_is_allowed(
    client, world, identity, method, path
) -> None:
    response = _call(client, world, method, path, world["tokens"][identity])
    assert response.status_code not in (401, 403, 404), (identity, method, path, response.text)


def test_every_dataset_and_job_route_has_its_role() -> None:
    """Owner-only and reviewer routes are named; everything else on a dataset is a read."""
    for method, path in REQUESTS:
        need = needs(method, path)
        if need == "viewer":
            assert method == "GET", (method, path)  # a change needs more than viewing
