"""The words encoder: the same text encoder for what users say and for the item text, frozen or
fine-tuned contrastively on (words, item text) pairs with in-batch negatives (the recipe of
BLaIR, Hou et al. 2024, on a small encoder that a CPU can fine-tune).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crossrec.words.config import EncoderFinetuneConfig

logger = logging.getLogger(__name__)


def words_encoder(model: str, max_tokens: int, device: str = "auto"):
    """A mean-pooled, unit-normalised ``TextEncoder`` (cosine = dot product)."""
    from crossrec.encoders.text import TextEncoder

    return TextEncoder(
        model=model, pooling="mean", max_tokens=max_tokens, device=device, bf16=False,
        normalize=True,
    )


def _masked_mean(hidden, mask):
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def finetune_words_encoder(
    model: str,
    words: Sequence[str],
    item_texts: Sequence[str],
    item_ids: np.ndarray,
    out_dir: Path,
    config: EncoderFinetuneConfig,
    seed: int,
    device: str = "auto",
) -> Path:
    """Fine-tune every weight of ``model`` on ``words[i] <-> item_texts[i]`` and save it.

    Symmetric InfoNCE over the batch; a pair whose item (or words) another pair of the batch
    shares is not that pair's negative. Returns the folder ``TextEncoder`` loads."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from crossrec.encoders.zoo import resolve_model

    path = resolve_model(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    from crossrec.device import resolve_device

    torch.manual_seed(int(seed))
    where = resolve_device(device)
    encoder = AutoModel.from_pretrained(path, dtype=torch.float32).to(where)
    rng = np.random.default_rng(int(seed))
    index = np.arange(len(words))
    if config.max_pairs is not None and len(index) > config.max_pairs:
        index = np.sort(rng.choice(index, config.max_pairs, replace=False))
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=config.lr, weight_decay=0.01)
    words_arr = np.asarray(words, dtype=object)
    texts_arr = np.asarray(item_texts, dtype=object)
    ids_arr = np.asarray(item_ids)

    def embed(texts):
        batch = tokenizer(
            list(texts), padding=True, truncation=True, max_length=config.max_tokens,
            return_tensors="pt",
        ).to(where)
        out = encoder(**batch).last_hidden_state
        return torch.nn.functional.normalize(_masked_mean(out, batch["attention_mask"]), dim=-1)

    from tqdm.auto import tqdm

    encoder.train()
    start = time.perf_counter()
    steps = 0
    for epoch in range(config.epochs):
        order = rng.permutation(index)
        batches = [
            order[i : i + config.batch_size]
            for i in range(0, len(order) - 1, config.batch_size)
            if len(order[i : i + config.batch_size]) > 1
        ]
        running = 0.0
        for batch in tqdm(batches, desc=f"words encoder epoch {epoch}", leave=False):
            q, d = embed(words_arr[batch]), embed(texts_arr[batch])
            logits = q @ d.T / config.temperature
            same_item = ids_arr[batch][:, None] == ids_arr[batch][None, :]
            same_words = words_arr[batch][:, None] == words_arr[batch][None, :]
            shared = (same_item | same_words) & ~np.eye(len(batch), dtype=bool)
            false_negative = torch.from_numpy(shared).to(where)
            logits = logits.masked_fill(false_negative, float("-inf"))
            target = torch.arange(len(batch), device=where)
            loss = (
                torch.nn.functional.cross_entropy(logits, target)
                + torch.nn.functional.cross_entropy(logits.T, target)
            ) / 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += float(loss.detach())
            steps += 1
        logger.info(
            "words encoder epoch %d: mean loss %.4f over %d steps (%.0fs so far)",
            epoch, running / max(len(batches), 1), len(batches), time.perf_counter() - start,
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder.eval().cpu()
    encoder.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    logger.info("fine-tuned words encoder (%d steps, %.0fs) saved to %s",
                steps, time.perf_counter() - start, out_dir)
    return out_dir
