"""Request and response pieces every resource shares: database id bounds, the health check."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

DB_ID_MAX = 2**31 - 1
"""Largest id a table can hold (Postgres `integer`): larger ids are a 422, not a 500."""


DB_OFFSET_MAX = 2**53
"""Largest page offset accepted (beyond any table; Postgres takes a bigint)."""


DbId = Annotated[int, Field(ge=1, le=DB_ID_MAX)]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    broker: str = Field(description="The broker's kind: redis, filesystem, ...")
    broker_state: str = Field(description="'ok' when the broker answers, else 'error: <why>'.")
