"""The caller's own secrets: the LLM judge's API key a judge job of theirs sends (else the
server's setting). Set and cleared here; the API never returns a secret, only whether it is set."""

from __future__ import annotations

from fastapi import APIRouter, status

from backend.deps import CurrentUser, SessionDep
from backend.schemas.users import SecretStatus, SecretValue
from backend.storage.secrets import JUDGE_API_KEY, delete_secret, put_secret, secret_updated_at

router = APIRouter(tags=["auth"])

PATH = f"/me/secrets/{JUDGE_API_KEY}"


@router.get(PATH, response_model=SecretStatus)
def read_judge_api_key(session: SessionDep, user: CurrentUser) -> SecretStatus:
    """Whether you have set your own judge API key, and when (never the key)."""
    updated_at = secret_updated_at(session, user.id, JUDGE_API_KEY)
    return SecretStatus(set=updated_at is not None, updated_at=updated_at)


@router.put(PATH, response_model=SecretStatus)
def set_judge_api_key(body: SecretValue, session: SessionDep, user: CurrentUser) -> SecretStatus:
    """Set your judge API key (encrypted at rest): your judge jobs send it to the judge server
    instead of the server's `judge_api_key`. It is never stored in a job nor shown again."""
    row = put_secret(session, user.id, JUDGE_API_KEY, body.value)
    session.commit()
    return SecretStatus(set=True, updated_at=row.updated_at)


@router.delete(PATH, status_code=status.HTTP_204_NO_CONTENT)
def clear_judge_api_key(session: SessionDep, user: CurrentUser) -> None:
    """Forget your judge API key: your judge jobs use the server's key again."""
    delete_secret(session, user.id, JUDGE_API_KEY)
    session.commit()
