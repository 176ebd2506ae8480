"""Catalog entry for the shared, content-addressed embedding cache.

The cache itself (shards, fingerprints, lookup) is plain Python in
:mod:`crossrec.encoders.cache`; this wrapper only lets the catalog hand a store bound to its
folder to the featurize nodes, so the location is configuration and shows up in ``kedro viz``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from crossrec.encoders.cache import EmbeddingStore


class EmbeddingCacheDataset(AbstractDataset[EmbeddingStore, EmbeddingStore]):
    """``load()`` returns an :class:`EmbeddingStore` on ``path``.

    ``save`` accepts a store: the same folder is a no-op (encoders already appended their
    shards); another folder's complete shards are merged in, so a cache can be seeded from
    elsewhere (e.g. an older per-dataset cache folder).
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> EmbeddingStore:
        return EmbeddingStore(self._path)

    def save(self, data: EmbeddingStore) -> None:
        if not isinstance(data, EmbeddingStore):
            raise TypeError(
                f"EmbeddingCacheDataset({self._path}) saves an EmbeddingStore, got {type(data)}"
            )
        if data.root.resolve() == self._path.resolve():
            return
        EmbeddingStore(self._path).merge_from(data)

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
