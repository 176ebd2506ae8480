"""Text encoder: item fields -> a string by template -> a transformers model -> one vector.

Works with encoder models (MiniLM) and causal LLMs (SmolLM2). Pooling:

* ``mean``   — masked mean of the last hidden states (good default for both kinds);
* ``last``   — state of the last real token (what a causal model has "read" at the end);
* ``prompt`` — the text is wrapped in a prompt that asks for a one-word summary and the
  last-token state is taken (PromptEOL-style: the next-token state summarises the item).

Speed: texts are tokenized once, sorted by length and batched so that padding is minimal;
``torch.inference_mode`` always, bf16 autocast on CUDA.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from crossrec.encoders.runtime import (
    inference_context,
    precision_name,
    resolve_device,
    weights_identity,
)
from crossrec.encoders.zoo import resolve_model

logger = logging.getLogger(__name__)

Pooling = Literal["mean", "last", "prompt"]
DEFAULT_PROMPT = 'This item: "{text}"\nDescribed in one word:"'


# --------------------------------------------------------------------------- templates
def template_fields(template: str) -> list[str]:
    """Field names used by a ``str.format`` template."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def choose_template(templates: Sequence[str], columns: Sequence[str]) -> str | None:
    """First template whose fields all exist among ``columns`` (None: use the automatic one)."""
    available = set(columns)
    for template in templates:
        if set(template_fields(template)) <= available:
            return template
    return None


def _fill(template: str, values: Mapping[str, str]) -> str:
    """Format ``template``, dropping each sentence-like segment whose fields are all empty.

    ``"{title}. Genres: {genres}. {overview}"`` with no genres gives ``"Heat. A thief..."``
    rather than ``"Heat. Genres: . A thief..."``.
    """
    kept = []
    for segment in re.split(r"(?<=[.;!?])\s+", template):
        fields = template_fields(segment)
        if fields and not any(values.get(f) for f in fields):
            continue
        kept.append(segment.format(**values))
    text = re.sub(r"\(\s*\)|\[\s*\]", "", " ".join(kept))
    return re.sub(r"\s+", " ", text).strip()


def render_texts(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], template: str | None
) -> list[str]:
    """One string per item. Missing values render empty; an item with no text gives ``""``.

    Without a template every column gives ``"<column>: <value>"`` (one column: the value alone),
    so an unseen dataset works without configuration.
    """

    def value(row: Mapping[str, Any], column: str) -> str:
        raw = row.get(column)
        if raw is None or (isinstance(raw, float) and np.isnan(raw)):
            return ""
        return str(raw).strip()

    texts = []
    for row in rows:
        values = {column: value(row, column) for column in columns}
        if not any(values.values()):
            texts.append("")
        elif template is not None:
            texts.append(_fill(template, values))
        elif len(columns) == 1:
            texts.append(values[columns[0]])
        else:
            texts.append(
                ". ".join(
                    f"{c.replace('_', ' ').capitalize()}: {v}" for c, v in values.items() if v
                )
            )
    return texts


# --------------------------------------------------------------------------- encoder
class TextEncoder:
    """A transformers model turned into a batched, pooled text embedder."""

    def __init__(
        self,
        model: str = "smollm2-135m-instruct",
        pooling: Pooling = "mean",
        prompt: str = DEFAULT_PROMPT,
        max_tokens: int = 256,
        batch_size: int = 32,
        device: str = "auto",
        bf16: bool = True,
        normalize: bool = False,
    ):
        from transformers import AutoConfig

        if pooling not in ("mean", "last", "prompt"):
            raise ValueError(f"pooling must be mean, last or prompt, got {pooling!r}")
        if pooling == "prompt" and "{text}" not in prompt:
            raise ValueError(f"the prompt must contain '{{text}}', got {prompt!r}")
        self.model_name, self.pooling, self.prompt = model, pooling, prompt
        self.max_tokens, self.batch_size, self.normalize = max_tokens, batch_size, normalize
        self.device = resolve_device(device)
        self.bf16 = bf16
        self.path = resolve_model(model)
        self.dim = int(AutoConfig.from_pretrained(self.path).hidden_size)
        self._tokenizer = self._model = None  # loaded on first use: a warm run never needs them

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.path)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
            tokenizer.padding_side = "right"
            self._tokenizer = tokenizer
        return self._tokenizer

    @property
    def model(self):
        if self._model is None:
            import torch
            from transformers import AutoModel

            self._model = (
                AutoModel.from_pretrained(self.path, dtype=torch.float32).to(self.device).eval()
            )
            logger.info(
                "Text encoder %s (%s pooling, %d-d) loaded on %s",
                self.model_name,
                self.pooling,
                self.dim,
                self.device,
            )
        return self._model

    def settings(self) -> dict[str, Any]:
        """Everything that changes the vectors (the cache fingerprint)."""
        return {
            "kind": "text",
            "model": self.model_name,
            "weights": weights_identity(self.path),
            "pooling": self.pooling,
            "prompt": self.prompt if self.pooling == "prompt" else None,
            "max_tokens": self.max_tokens,
            "normalize": self.normalize,
            "precision": precision_name(self.device, self.bf16),
        }

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        tok = self.tokenizer
        if self.pooling != "prompt":
            return tok(list(texts), truncation=True, max_length=self.max_tokens)["input_ids"]
        # Truncate the item text, never the prompt around it (its end is what gets pooled).
        overhead = len(tok(self.prompt.replace("{text}", ""))["input_ids"])
        budget = max(8, self.max_tokens - overhead)
        body = tok(list(texts), add_special_tokens=False, truncation=True, max_length=budget)
        short = tok.batch_decode(body["input_ids"], skip_special_tokens=True)
        return tok([self.prompt.format(text=t) for t in short])["input_ids"]

    def batches(self, token_ids: list[list[int]]) -> list[np.ndarray]:
        """Positions grouped into batches of similar length (longest first: fail fast on OOM)."""
        order = np.argsort([-len(ids) for ids in token_ids], kind="stable")
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """``(len(texts), dim)`` float32, rows in input order."""
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        token_ids = self._token_ids(texts)
        with inference_context(self.device, self.bf16):
            for batch in self.batches(token_ids):
                padded = self.tokenizer.pad(
                    {"input_ids": [token_ids[i] for i in batch]}, return_tensors="pt"
                )
                ids = padded["input_ids"].to(self.device)
                mask = padded["attention_mask"].to(self.device)
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                vectors = pool(hidden.float(), mask, "mean" if self.pooling == "mean" else "last")
                if self.normalize:
                    vectors = torch.nn.functional.normalize(vectors, dim=-1)
                out[batch] = vectors.cpu().numpy()
                if progress is not None:
                    progress(len(batch))
        return out


def pool(hidden, mask, how: str):
    """Masked mean over tokens, or the last real token (right padding)."""
    if how == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    last = mask.sum(1).long() - 1
    return hidden[hidden.new_tensor(range(hidden.shape[0])).long(), last]
