"""A tiny random LLaMA model + word-level tokenizer saved to a temp folder (fast LLM tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

WORDS = (
    "the a of and movie film song album about space love war comedy drama jazz rock pop "
    "robot city night ocean dream hero story music dance dark light"
).split()


def make_tiny_llama(folder: Path, n_layers: int = 2, hidden: int = 32, seed: int = 0) -> Path:
    """Save a random LlamaForCausalLM + tokenizer that AutoModel/AutoTokenizer load."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    )
    config = LlamaConfig(
        vocab_size=256,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def tiny_llama4_dir(tmp_path_factory) -> Path:
    """Four layers, for the partial-mode test."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny_llama4"), n_layers=4)


@pytest.fixture()
def toy_items() -> tuple[list[str], dict]:
    """12 items: texts of varying length (one empty), image (2 missing) and audio vectors."""
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=int(n))) for n in rng.integers(1, 9, size=12)]
    texts[4] = ""
    image_mask = np.ones(12, dtype=bool)
    image_mask[[2, 7]] = False
    image = rng.normal(size=(12, 12)).astype(np.float32)
    image[~image_mask] = 0.0
    features = {
        "text": {
            "vectors": rng.normal(size=(12, 16)).astype(np.float32),
            "mask": np.ones(12, bool),
        },
        "image": {"vectors": image, "mask": image_mask},
        "audio": {
            "vectors": rng.normal(size=(12, 8)).astype(np.float32),
            "mask": np.ones(12, bool),
        },
        "__order__": ["text", "image", "audio"],
    }
    return texts, features
