"""Embedding cache: per-modality vectors keyed by item id + content fingerprint, in shards.

Why a *handle* rather than load-everything/save-everything: an encoder must (1) look up which
items are already encoded with the same model, settings and input content, (2) encode only the
rest and (3) write results *while it streams*, so that a catalogue 100x larger never sits in
memory and an interrupted run keeps what it finished. So the cache is an :class:`EmbeddingStore`
bound to a folder; nodes hand it to the encoders, which ask it for hits and append shards. This
module is plain Python (no Kedro): the catalog entry that hands a store to the nodes is
``crossrec.datasets.embedding_cache.EmbeddingCacheDataset``.

Content-addressed and shared: the key holds everything that decides a vector, so one store is
shared by every dataset name, k-core and split variant (``data/04_feature/embedding_cache``);
an item already encoded under any of them is a hit, and two datasets whose items share an id
but not their content never collide.

Layout::

    <root>/<modality>/<settings fingerprint>/settings.json
    <root>/<modality>/<settings fingerprint>/shard-<ns>-<pid>-<rand>.vectors.npy  float32 (n, d)
    <root>/<modality>/<settings fingerprint>/shard-<ns>-<pid>-<rand>.keys.npy     str (n,)
        (key = "<item id>\\x1f<content hash>")

The settings fingerprint covers model identity + every setting that changes vectors, so a new
model or pooling opens a fresh folder (that modality recomputes; others are untouched). The key
covers the item id and a hash of the item's input (text string, file bytes), so editing one
item's text misses only that item. Shard names are unique per writer (time, pid, random), so
concurrent runs appending to one store never overwrite each other; each file is written to a
hidden temporary name and renamed, vectors first and keys last, so a crash never leaves a
half-written shard that looks valid. Vectors are memory-mapped on read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

KEY_SEP = "\x1f"
SHARD_GLOB = "shard-*.keys.npy"


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


def new_shard_name() -> str:
    """A shard name no other writer picks: sorts by creation time, then pid and randomness."""
    return f"shard-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def write_atomically(path: Path, write: Any) -> None:
    """``write(handle)`` into a hidden unique temp file next to ``path``, then rename it over.

    Readers see the old file or the complete new one, never a partial one; a crash leaves at
    most a ``.*.tmp`` file that no reader looks at.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_settings_once(folder: Path, settings: dict[str, Any]) -> None:
    """Create ``folder`` and its ``settings.json`` (what its fingerprint stands for) if new."""
    folder.mkdir(parents=True, exist_ok=True)
    settings_file = folder / "settings.json"
    if not settings_file.exists():
        text = json.dumps(settings, indent=2, sort_keys=True, default=str)
        write_atomically(settings_file, lambda handle: handle.write(text.encode("utf-8")))


class CorruptShardError(RuntimeError):
    """A shard file that cannot be read; the message names it and says how to recover."""


class ModalityCache:
    """Shards of one modality under one settings fingerprint."""

    def __init__(self, folder: Path, settings: dict[str, Any]):
        self.folder = folder
        self.settings = settings
        self._index: dict[str, tuple[str, int]] | None = None
        self._sizes: dict[str, int] = {}
        self._vectors: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ reading
    def _shard_names(self) -> list[str]:
        """Complete shards (their keys file exists), oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name[: -len(".keys.npy")] for p in self.folder.glob(SHARD_GLOB))

    def _read_keys(self, shard: str) -> list[str]:
        path = self._path(shard, "keys")
        try:
            return np.load(path, allow_pickle=False).tolist()
        except (OSError, ValueError, EOFError) as error:
            raise CorruptShardError(
                f"embedding cache shard {path} cannot be read ({error}); delete it and its "
                f"'.vectors.npy' twin (those items are re-encoded on the next run)"
            ) from error

    def _load_index(self) -> dict[str, tuple[str, int]]:
        if self._index is None:
            index: dict[str, tuple[str, int]] = {}
            for shard in self._shard_names():
                keys = self._read_keys(shard)
                self._sizes[shard] = len(keys)
                for row, key in enumerate(keys):
                    index[key] = (shard, row)  # later shards win (re-encoded items)
            self._index = index
        return self._index

    def __len__(self) -> int:
        return len(self._load_index())

    def __contains__(self, key: str) -> bool:
        return key in self._load_index()

    def _shard_vectors(self, shard: str) -> np.ndarray:
        if shard not in self._vectors:
            path = self._path(shard, "vectors")
            try:
                vectors = np.load(path, mmap_mode="r")
            except (OSError, ValueError, EOFError) as error:
                raise CorruptShardError(
                    f"embedding cache shard {path} cannot be read ({error}); delete it and its "
                    f"'.keys.npy' twin (those items are re-encoded on the next run)"
                ) from error
            if vectors.ndim != 2 or len(vectors) != self._sizes.get(shard, len(vectors)):
                raise CorruptShardError(
                    f"embedding cache shard {path} holds shape {vectors.shape} but its keys file "
                    f"lists {self._sizes.get(shard)} items; delete both files of this shard"
                )
            self._vectors[shard] = vectors
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
        """Write one shard under a fresh unique name (vectors first, keys last, each atomic)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        if not len(keys):
            return
        write_settings_once(self.folder, self.settings)
        shard = new_shard_name()
        key_array = np.asarray(list(keys), dtype=str)
        for kind, array in (("vectors", vectors), ("keys", key_array)):
            write_atomically(
                self._path(shard, kind),
                lambda handle, array=array: np.save(handle, array, allow_pickle=False),
            )
        index = self._load_index()
        self._sizes[shard] = len(keys)
        for row, key in enumerate(keys):
            index[key] = (shard, row)

    def _path(self, shard: str, kind: str) -> Path:
        return self.folder / f"{shard}.{kind}.npy"

    def n_shards(self) -> int:
        return len(self._shard_names())


class EmbeddingStore:
    """Handle on a cache folder shared by all datasets; hands out :class:`ModalityCache`s."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def modality(self, name: str, settings: dict[str, Any]) -> ModalityCache:
        """The cache of ``name`` for these settings (a new folder when any setting differs)."""
        return ModalityCache(self.root / name / fingerprint(settings), settings)

    def modalities(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def merge_from(self, other: EmbeddingStore) -> int:
        """Copy ``other``'s complete shards in (names are unique: nothing is overwritten).

        Lets a cache be seeded from another machine or an older per-dataset folder; temp files
        of interrupted writers are skipped. Returns how many shards were copied.
        """
        copied = 0
        for settings_file in sorted(other.root.glob("*/*/settings.json")):
            source = settings_file.parent
            target = self.root / source.relative_to(other.root)
            target.mkdir(parents=True, exist_ok=True)
            if not (target / "settings.json").exists():
                shutil.copyfile(settings_file, target / "settings.json")
            for keys_file in sorted(source.glob(SHARD_GLOB)):
                shard = keys_file.name[: -len(".keys.npy")]
                if (target / keys_file.name).exists():
                    continue
                for kind in ("vectors", "keys"):  # keys last: the shard appears complete
                    name = f"{shard}.{kind}.npy"
                    with open(source / name, "rb") as src:
                        write_atomically(
                            target / name, lambda handle, src=src: shutil.copyfileobj(src, handle)
                        )
                copied += 1
        return copied

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
