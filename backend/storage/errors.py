"""The errors of the storage layer's queries, which the API maps to HTTP responses."""

from __future__ import annotations

from backend.errors import BadInput


class ReviewError(BadInput):
    """A review query cannot answer as asked (no scores, an unknown column, a budget too big)."""
