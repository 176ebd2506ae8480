"""Cached frozen trunk of the LLM item encoder: the bottom layers run once per item text.

With ``trunk_cache`` on (``frozen``, ``lora`` and ``partial`` modes), only the top
``top_n_layers`` decoder layers take part in training; LoRA adapters sit on those layers only
and partial mode trains them. The layers below never change, so their output for an item's
text never changes either: it is computed once, in inference mode, and kept in memory and on
disk. Each step then runs only the top layers over the cached hidden states.

Where soft tokens enter: at the first trainable layer. Image/audio soft tokens placed before
the text at the input would make every trunk hidden state depend on the (training) soft-token
projectors, and nothing could be cached. Entering at the first trainable layer keeps the trunk
a function of the text alone; the soft tokens still reach every text position through the
trainable layers' attention (they come first, so every text token attends to them) and are
scaled to the trunk output's typical token norm instead of the input embeddings'. Rotary
position embeddings only see position differences, so the text keeps its relative positions
when the soft tokens are put in front of it at the top.

Disk layout (content-addressed like ``crossrec.encoders.cache``)::

    <root>/<settings fingerprint>/settings.json     model files, trunk depth, dtype, version
    <root>/<settings fingerprint>/shard-*.hidden.npy  (sum of token counts, hidden) float16/32
    <root>/<settings fingerprint>/shard-*.lengths.npy (n,) tokens per item
    <root>/<settings fingerprint>/shard-*.keys.npy    (n,) hash of the item's token ids

A new model, trunk depth or dtype opens a fresh folder; an edited text changes its token ids,
so only that item misses. Files are written hidden-then-renamed, keys last, so a crash never
leaves a shard that looks complete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crossrec.encoders.cache import (
    content_hash,
    fingerprint,
    new_shard_name,
    write_atomically,
    write_settings_once,
)
from crossrec.encoders.runtime import weights_identity

logger = logging.getLogger(__name__)

#: bump when the trunk computation changes (old cache folders are then ignored)
TRUNK_VERSION = 1
#: float16 storage holds values up to 65504; larger trunk outputs are stored in float32
FLOAT16_LIMIT = 6.0e4


def trunk_settings(model_dir: Path, n_trunk: int, dtype: str) -> dict[str, Any]:
    """Everything that decides the trunk's hidden states, except the text itself."""
    return {
        "model": Path(model_dir).name,
        "files": weights_identity(model_dir),
        "trunk_layers": int(n_trunk),
        "dtype": dtype,
        "version": TRUNK_VERSION,
    }


def token_key(ids: np.ndarray) -> str:
    """Cache key of one item: a hash of its (unpadded) token ids."""
    return content_hash(np.ascontiguousarray(ids, dtype=np.int64).tobytes())


class TrunkCache:
    """Ragged per-item hidden states (``(tokens, hidden)``) under one settings fingerprint."""

    def __init__(self, root: str | Path, settings: dict[str, Any]):
        self.settings = settings
        self.folder = Path(root) / fingerprint(settings)
        self._index: dict[str, tuple[str, int, int]] | None = None
        self._arrays: dict[str, np.ndarray] = {}

    def _load_index(self) -> dict[str, tuple[str, int, int]]:
        if self._index is None:
            index: dict[str, tuple[str, int, int]] = {}
            if self.folder.is_dir():
                for keys_file in sorted(self.folder.glob("shard-*.keys.npy")):
                    shard = keys_file.name[: -len(".keys.npy")]
                    try:
                        keys = np.load(keys_file, allow_pickle=False).tolist()
                        lengths = np.load(self.folder / f"{shard}.lengths.npy")
                    except (OSError, ValueError, EOFError) as error:
                        raise ValueError(
                            f"LLM trunk cache shard {keys_file} cannot be read ({error}); delete "
                            f"the files {shard}.* (those items are recomputed on the next run)"
                        ) from None
                    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
                    for key, start, length in zip(keys, starts, lengths, strict=True):
                        index[key] = (shard, int(start), int(length))
            self._index = index
        return self._index

    def __len__(self) -> int:
        return len(self._load_index())

    def _hidden(self, shard: str) -> np.ndarray:
        if shard not in self._arrays:
            self._arrays[shard] = np.load(self.folder / f"{shard}.hidden.npy", mmap_mode="r")
        return self._arrays[shard]

    def lookup(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """``{key: (tokens, hidden) array}`` of the keys found."""
        index = self._load_index()
        out = {}
        for key in keys:
            if key in index:
                shard, start, length = index[key]
                out[key] = np.asarray(self._hidden(shard)[start : start + length])
        return out

    def append(self, keys: Sequence[str], arrays: Sequence[np.ndarray]) -> None:
        """One new shard: hidden states, then lengths, then keys (each atomic)."""
        if not keys:
            return
        write_settings_once(self.folder, self.settings)
        hidden = np.concatenate(arrays)
        dtype = np.float16 if np.abs(hidden).max() < FLOAT16_LIMIT else np.float32
        shard = new_shard_name()
        files = (
            ("hidden", hidden.astype(dtype)),
            ("lengths", np.array([len(a) for a in arrays], dtype=np.int64)),
            ("keys", np.asarray(list(keys), dtype=str)),
        )
        for kind, array in files:
            write_atomically(
                self.folder / f"{shard}.{kind}.npy",
                lambda handle, array=array: np.save(handle, array, allow_pickle=False),
            )
        index = self._load_index()
        offset = 0
        for key, array in zip(keys, arrays, strict=True):
            index[key] = (shard, offset, len(array))
            offset += len(array)


# ------------------------------------------------------------------------- running layers


def base_model(backbone: nn.Module) -> nn.Module:
    """The decoder model under a peft wrapper (embeddings, rotary embedding, norm, config)."""
    return backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone


def run_layers(
    backbone: nn.Module, layers: Sequence[nn.Module], hidden: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """``hidden`` (b, t, h) through ``layers`` with a causal + padding mask, positions 0..t-1.

    The same mask and rotary embeddings the model's own forward builds, so running the layers
    in two parts (trunk, then top) equals one pass over all of them.
    """
    from transformers.masking_utils import create_causal_mask

    model = base_model(backbone)
    positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
    causal = create_causal_mask(
        config=model.config,
        inputs_embeds=hidden,
        attention_mask=mask,
        cache=None,
        position_ids=positions,
    )
    rotary = model.rotary_emb(hidden, position_ids=positions)
    for layer in layers:
        hidden = layer(
            hidden,
            attention_mask=causal,
            position_embeddings=rotary,
            position_ids=positions,
            use_cache=False,
        )
    return hidden


def trunk_forward(
    backbone: nn.Module, layers: Sequence[nn.Module], ids: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Token embeddings of ``ids`` through the frozen bottom ``layers`` (b, t, hidden)."""
    hidden = backbone.get_input_embeddings()(ids)
    return run_layers(backbone, layers, hidden, mask) if len(layers) else hidden


@torch.inference_mode()
def compute_trunk(
    backbone: nn.Module,
    layers: Sequence[nn.Module],
    ids: torch.Tensor,
    mask: torch.Tensor,
    batch_size: int = 32,
) -> list[np.ndarray]:
    """Each item's trunk hidden states (its real tokens only), batched by similar length.
    Runs where ``backbone`` is: ``ids`` / ``mask`` may stay on the CPU."""
    device = backbone.get_input_embeddings().weight.device
    lengths = mask.sum(dim=1)
    order = torch.argsort(lengths, descending=True).tolist()
    out: list[np.ndarray | None] = [None] * len(order)
    began = last_log = time.perf_counter()
    for start in range(0, len(order), batch_size):
        if time.perf_counter() - last_log > 60:  # a catalogue can take minutes on a CPU
            last_log = time.perf_counter()
            logger.info("LLM trunk: %d / %d items (%.0fs)", start, len(order), last_log - began)
        rows = order[start : start + batch_size]
        length = int(lengths[rows].max())
        hidden = trunk_forward(
            backbone, layers, ids[rows, :length].to(device), mask[rows, :length].to(device)
        )
        hidden = hidden.float().cpu().numpy()
        for j, row in enumerate(rows):
            out[row] = hidden[j, : int(lengths[row])].copy()
    return out  # type: ignore[return-value]


def load_or_compute_trunk(
    backbone: nn.Module,
    layers: Sequence[nn.Module],
    ids: torch.Tensor,
    mask: torch.Tensor,
    cache: TrunkCache | None,
    batch_size: int = 32,
) -> torch.Tensor:
    """Padded ``(n_items, max tokens, hidden)`` trunk output (float16 when it fits), from the
    cache where possible; misses are computed once and appended to the cache."""
    lengths = mask.sum(dim=1).tolist()
    keys = [token_key(ids[i, : lengths[i]].numpy()) for i in range(len(ids))]
    found = cache.lookup(keys) if cache is not None else {}
    misses = sorted({i for i, k in enumerate(keys) if k not in found}, key=keys.__getitem__)
    unique_misses = list({keys[i]: i for i in misses}.values())
    if unique_misses:
        start = time.perf_counter()
        rows = torch.as_tensor(unique_misses)
        computed = compute_trunk(backbone, layers, ids[rows], mask[rows], batch_size)
        fresh = {keys[i]: a for i, a in zip(unique_misses, computed, strict=True)}
        if cache is not None:
            cache.append(list(fresh), list(fresh.values()))
        found.update(fresh)
        logger.info(
            "LLM trunk: %d layers over %d item texts in %.1fs (%d cached already)%s",
            len(layers),
            len(unique_misses),
            time.perf_counter() - start,
            len(keys) - len(misses),
            f", saved to {cache.folder}" if cache is not None else "",
        )
    else:
        logger.info("LLM trunk: all %d items from the cache %s", len(keys), cache.folder)
    hidden_size = next(iter(found.values())).shape[1]
    big = max(float(np.abs(a).max()) for a in found.values()) >= FLOAT16_LIMIT
    table = torch.zeros(
        len(keys), max(lengths), hidden_size, dtype=torch.float32 if big else torch.float16
    )
    for i, key in enumerate(keys):
        table[i, : lengths[i]] = torch.from_numpy(np.asarray(found[key], dtype=np.float32))
    return table
