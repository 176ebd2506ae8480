"""Pieces shared by the LLM fine-tuning benchmarks (llm_finetune.py on CPU, llm_gpu.py on GPU):
the batch they draw, the sub-catalogue of the items it touches, and one training step."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np


def draw_batch(n_items: int, batch: int, negatives: int, seed: int = 0) -> dict:
    """Positives, per-example negatives and one set of shared negatives (item indices)."""
    rng = np.random.default_rng(seed)
    return {
        "pos": rng.choice(n_items, size=batch, replace=False),
        "neg": rng.integers(0, n_items, size=(batch, negatives)),
        "shared": rng.choice(n_items, size=negatives, replace=False),
    }


def sub_catalogue(
    texts: list[str], features: dict, items: np.ndarray
) -> tuple[dict[int, int], list[str], dict]:
    """Only ``items``: ``(old index -> new index, their texts, their soft-token features)``, so
    that building the encoder (its trunk, its token table) costs these items alone."""
    remap = {int(i): j for j, i in enumerate(items)}
    modalities = [m for m in features if not m.startswith("__")]
    sub = {
        m: {
            "vectors": np.asarray(features[m]["vectors"])[items],
            "mask": np.asarray(features[m]["mask"])[items],
        }
        for m in modalities
    }
    sub["__order__"] = modalities
    return remap, [texts[i] for i in items], sub


def train_step(encoder, optimizer, users, pos, neg, *, one_call: bool = True, amp=None):
    """One BPR step (forward, backward, optimizer step); returns the loss (a tensor, not synced).

    ``one_call``: positives and negatives in one encoder call, each distinct item encoded once
    (the cached path); else two calls (``main`` before the trunk cache). ``amp``: the autocast
    dtype of the forward (e.g. ``torch.bfloat16``; weights stay float32), None = off.
    """
    import torch

    device_type = users.device.type
    autocast = nullcontext() if amp is None else torch.autocast(device_type, dtype=amp)
    with autocast:
        if one_call:
            both = encoder(torch.cat([pos.unsqueeze(1), neg], dim=1).reshape(-1))
            both = both.view(len(pos), -1, both.shape[-1])
            p, n = both[:, 0], both[:, 1:]
        else:
            p = encoder(pos)
            n = encoder(neg.reshape(-1)).view(*neg.shape, -1)
        scores = (users * p.float()).sum(-1, keepdim=True) - torch.einsum(
            "bd,bkd->bk", users, n.float()
        )
        loss = -torch.nn.functional.logsigmoid(scores).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()
