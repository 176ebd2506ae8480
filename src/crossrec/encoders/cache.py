"""Embedding cache: per-modality vectors keyed by item id + fingerprint, written in shards.

Design (why a dataset that *returns a handle*): an encoder must (1) look up which items are
already encoded with the same model, settings and input content, (2) encode only the rest and
(3) write results *while it streams*, so that a catalogue 100x larger never sits in memory and
an interrupted run keeps what it finished. A plain Kedro dataset is load-everything /
save-everything at node boundaries, which gives neither (2) incremental nor (3) bounded-memory
writes. So :class:`EmbeddingCacheDataset` (the catalog entry) loads as an
:class:`EmbeddingStore` bound to its folder; nodes hand the store to the encoders, which ask it
for hits and append shards. All file I/O stays inside this module: nodes never touch paths, the
location is catalog configuration, and the cache shows up in ``kedro viz`` as an input.

Layout::

    <root>/<modality>/<settings fingerprint>/settings.json
    <root>/<modality>/<settings fingerprint>/shard-000001.vectors.npy   float32 (n, d)
    <root>/<modality>/<settings fingerprint>/shard-000001.keys.npy      str (n,)
        (key = "<item id>\\x1f<content hash>")

The settings fingerprint covers model identity + every setting that changes vectors, so a new
model or pooling opens a fresh folder (that modality recomputes; others are untouched). The key
covers the item id and a hash of the item's input (text string, file bytes), so editing one
item's text misses only that item. Shards are written to a temporary name and renamed, keys
last, so a crash never leaves a half-written shard that looks valid. Vectors are memory-mapped
on read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset

logger = logging.getLogger(__name__)

KEY_SEP = "\x1f"


def fingerprint(obj: Any, length: int = 16) -> str:
    """Stable short hash of a JSON-serialisable object (dict keys sorted)."""
    payload = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def content_hash(data: bytes | str) -> str:
    """Hash of one item's input: a text string or the bytes of a media file."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str | None:
    """Hash of a file's bytes, or None when it cannot be read (the encoder reports why)."""
    digest = hashlib.blake2b(digest_size=12)
    try:
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def item_key(item_id: str, content: str) -> str:
    return f"{item_id}{KEY_SEP}{content}"


class ModalityCache:
    """Shards of one modality under one settings fingerprint."""

    def __init__(self, folder: Path, settings: dict[str, Any]):
        self.folder = folder
        self.settings = settings
        self._index: dict[str, tuple[int, int]] | None = None
        self._vectors: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ reading
    def _shard_ids(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted(
            int(p.name.split(".")[0].split("-")[1]) for p in self.folder.glob("shard-*.keys.npy")
        )

    def _load_index(self) -> dict[str, tuple[int, int]]:
        if self._index is None:
            index: dict[str, tuple[int, int]] = {}
            for shard in self._shard_ids():
                keys = np.load(self._path(shard, "keys"), allow_pickle=False)
                for row, key in enumerate(keys.tolist()):
                    index[key] = (shard, row)  # later shards win (re-encoded items)
            self._index = index
        return self._index

    def __len__(self) -> int:
        return len(self._load_index())

    def __contains__(self, key: str) -> bool:
        return key in self._load_index()

    def _shard_vectors(self, shard: int) -> np.ndarray:
        if shard not in self._vectors:
            self._vectors[shard] = np.load(self._path(shard, "vectors"), mmap_mode="r")
        return self._vectors[shard]

    def lookup(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """``(hit mask, vectors of the hits in order)``; vectors is None when nothing hits."""
        index = self._load_index()
        hits = np.array([key in index for key in keys], dtype=bool)
        if not hits.any():
            return hits, None
        found = [index[k] for k, h in zip(keys, hits, strict=True) if h]
        rows = [self._shard_vectors(shard)[row] for shard, row in found]
        return hits, np.asarray(np.stack(rows), dtype=np.float32)

    # ------------------------------------------------------------------ writing
    def append(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Write one shard (atomic: temp file + rename, keys last)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        if not len(keys):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        settings_file = self.folder / "settings.json"
        if not settings_file.exists():
            settings_file.write_text(
                json.dumps(self.settings, indent=2, sort_keys=True, default=str)
            )
        shard = (self._shard_ids() or [0])[-1] + 1
        for kind, array in (("vectors", vectors), ("keys", np.asarray(list(keys), dtype=str))):
            final = self._path(shard, kind)
            tmp = final.with_name(final.name + ".tmp")
            with open(tmp, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
            os.replace(tmp, final)
        index = self._load_index()
        for row, key in enumerate(keys):
            index[key] = (shard, row)

    def _path(self, shard: int, kind: str) -> Path:
        return self.folder / f"shard-{shard:06d}.{kind}.npy"

    def n_shards(self) -> int:
        return len(self._shard_ids())


class EmbeddingStore:
    """Handle on the cache folder of one dataset; hands out :class:`ModalityCache` objects."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def modality(self, name: str, settings: dict[str, Any]) -> ModalityCache:
        """The cache of ``name`` for these settings (a new folder when any setting differs)."""
        return ModalityCache(self.root / name / fingerprint(settings), settings)

    def modalities(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def prune(self, keep: dict[str, Iterable[str]]) -> list[Path]:
        """Remove settings folders of ``modality`` not in ``keep[modality]``; returns what went."""
        removed = []
        for name, fingerprints in keep.items():
            folder = self.root / name
            if not folder.is_dir():
                continue
            wanted = set(fingerprints)
            for sub in folder.iterdir():
                if sub.is_dir() and sub.name not in wanted:
                    shutil.rmtree(sub)
                    removed.append(sub)
        return removed

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.root)!r})"


class EmbeddingCacheDataset(AbstractDataset[EmbeddingStore, EmbeddingStore]):
    """Catalog entry for the embedding cache; ``load()`` returns an :class:`EmbeddingStore`.

    ``save`` accepts a store: the same folder is a no-op (encoders already appended their
    shards); another folder's shards are copied in, so a cache can be seeded from elsewhere.
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
        shutil.copytree(data.root, self._path, dirs_exist_ok=True)

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
