"""What can be wrong with an upload: a bad row or file (`PairFormatError`), several bad rows
(`BadRows`), a size limit passed (`LimitExceeded`), and the log of bad rows an upload keeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.errors import BadInput, TooLarge


class PairFormatError(BadInput):
    """A row of an upload is unusable. `row` is 1-based; `column` a field name or a number."""

    def __init__(self, message: str, row: int | None = None, column: str | int | None = None):
        self.message = message
        self.row = row
        self.column = column
        where = []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    def as_dict(self) -> dict[str, Any]:
        return {"message": str(self), "row": self.row, "column": self.column}

    @property
    def detail(self) -> Any:
        return self.as_dict()


class BadRows(PairFormatError):
    """Several rows of an upload are unusable: the first names itself as usual, and `errors`
    lists them all (up to a cap), with `count` the number found."""

    def __init__(self, errors: list[PairFormatError], count: int, capped: bool) -> None:
        first = errors[0]
        more = count - 1
        suffix = ""
        if more:
            suffix = f" (and {more}{'+' if capped else ''} more bad row{'s' if more > 1 else ''})"
        super().__init__(first.message + suffix, first.row, first.column)
        self.errors, self.count, self.capped = errors, count, capped

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        out.update(
            errors=[e.as_dict() for e in self.errors], n_errors=self.count, capped=self.capped
        )
        return out


class LimitExceeded(TooLarge, PairFormatError):
    """The upload goes past a size limit (a 413): too large decompressed, a line too long, too
    many rows. Named like any format error: the row where it happened and the limit."""


@dataclass(frozen=True)
class RowError:
    """A record that could not be read (bad JSON on its line, a bad CSV row), yielded in its
    place so a reader that skips bad rows can go on with the next one."""

    error: PairFormatError


class BadRowLog:
    """The bad rows of an upload: the first `cap` are kept, all are counted. Rejecting the file,
    the log raises BadRows once it is full (the file is refused; reading on is pointless)."""

    def __init__(self, cap: int, reject: bool) -> None:
        self.cap, self.reject = cap, reject
        self.errors: list[PairFormatError] = []
        self.count = 0

    def __call__(self, error: PairFormatError) -> None:
        self.count += 1
        if len(self.errors) < self.cap:
            self.errors.append(error)
        elif self.reject:
            raise BadRows(self.errors, self.count, capped=True)

    def refusal(self) -> BadRows:
        """The error that refuses the file for the rows logged (there is at least one)."""
        return BadRows(self.errors, self.count, capped=False)
