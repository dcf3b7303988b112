"""Liveness: the only endpoint besides the docs that needs no token."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from backend.deps import SessionDep, SettingsDep
from backend.schemas import Health
from backend.services.reaper import broker_state

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(session: SessionDep, settings: SettingsDep) -> Health:
    """Report whether the database and the broker answer, and which broker jobs go to."""
    try:
        session.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # report, don't crash: this is what monitoring polls
        database = f"error: {type(exc).__name__}"
    broker = (
        "filesystem" if settings.uses_filesystem_broker else settings.broker_url.split("://")[0]
    )
    state = broker_state(settings)
    healthy = database == "ok" and state == "ok"
    return Health(
        status="ok" if healthy else "degraded",
        database=database,
        broker=broker,
        broker_state=state,
    )
