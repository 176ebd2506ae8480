"""Errors raised while reading raw data: each names the file, row / column and what was expected."""

from __future__ import annotations

from pathlib import Path


class DataValidationError(ValueError):
    """Raw data does not match what an adapter or a validation step expects.

    The message always starts with the file, then the row (1-based line of data, header excluded)
    and column when known, the problem, and what was expected, so the user can fix the file
    without reading a pandas stack trace.
    """

    def __init__(
        self,
        file: str | Path,
        problem: str,
        *,
        row: int | None = None,
        column: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.file = str(file)
        self.problem = problem
        self.row = row
        self.column = column
        self.expected = expected
        where = [self.file]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        message = ", ".join(where) + f": {problem}"
        if expected:
            message += f" (expected {expected})"
        super().__init__(message)


class DatasetNotFoundError(FileNotFoundError):
    """A configured dataset has no folder under the raw-data root."""

    def __init__(self, dataset: str, folder: Path, hint: str = "") -> None:
        self.dataset = dataset
        self.folder = Path(folder)
        message = (
            f"Dataset {dataset!r} not found: looked in {self.folder} (which does not exist).\n"
            "Provide it in one of these ways:\n"
            f"  - set CROSSREC_DATA_DIR to the folder that contains '{dataset}/' "
            "(e.g. export CROSSREC_DATA_DIR=../shared/data), or\n"
            f"  - put the dataset's files under data/01_raw/{dataset}/"
        )
        if hint:
            message += f", or\n  - {hint}"
        super().__init__(message)


class MediaError(DataValidationError):
    """Too many media files of a dataset are missing or do not decode."""


class UnknownDatasetError(KeyError):
    """``dataset`` names no entry of ``ingest.datasets`` (a KeyError that prints its message
    as written, not quoted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
