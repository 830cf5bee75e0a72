"""Errors the engine raises for bad input, and the per-row problem record."""

from __future__ import annotations

import dataclasses


class InputError(Exception):
    """The input cannot be analysed; the message says why, in words a user can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TableError(InputError):
    """A structural problem with the whole file (unreadable, missing column, too large...)."""


class UnsupportedFormatError(TableError):
    """The bytes are not a table format we read (binary data, legacy .xls, not UTF-8, broken .xlsx)."""


class ParameterError(InputError):
    """A parameter has the wrong type, an unknown name or an out-of-range value."""


@dataclasses.dataclass(frozen=True)
class RowIssue:
    """One problem in one cell: 1-based data row, column, offending value, reason."""

    row: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.column} = {self.value!r}: {self.reason}"

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class InvalidRowsError(InputError):
    """Rows failed validation and the policy is `reject`."""

    def __init__(self, issues: list[RowIssue], n_rows: int) -> None:
        self.issues = issues
        self.n_rows = n_rows
        bad_rows = len({issue.row for issue in issues})
        shown = "; ".join(str(issue) for issue in issues[:5])
        more = f" (and {len(issues) - 5} more problems)" if len(issues) > 5 else ""
        super().__init__(
            f"{bad_rows} of {n_rows} rows are invalid: {shown}{more}. Fix the file, or rerun with "
            "on_invalid_rows=skip to analyse the valid rows only."
        )
