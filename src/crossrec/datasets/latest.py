"""``LatestOrNoneDataset``: the newest version of a versioned pickle, or None before the first.

The refresh pipeline reads the latest ``refreshed_model`` under this name (same file path) and
writes the next version under the other: a chain of refreshes needs the previous one, and the
very first refresh has none.
"""

from __future__ import annotations

from typing import Any

from crossrec.datasets.atomic import AtomicPickleDataset


class LatestOrNoneDataset(AtomicPickleDataset):
    """Loads the newest saved version, or None when no version exists yet (read-only)."""

    def load(self) -> Any:
        if not self.exists():
            return None
        return super().load()

    def save(self, data: Any) -> None:
        raise NotImplementedError(
            f"{self._filepath}: LatestOrNoneDataset is read-only; save through the versioned "
            "dataset of the same file"
        )
