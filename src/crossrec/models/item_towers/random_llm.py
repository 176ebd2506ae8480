"""A random-weight LLaMA saved as a model folder (config, weights, word-level tokenizer).

For tests and throughput measurements. A training step's speed depends on the architecture and
the token counts, not on the weight values, so a random model of SmolLM2-135M's shape stands in
for the real one where its weights cannot go (they come from a pip package and are converted on
first use; a GPU machine reached with a 64 MiB working tree has neither), and tiny ones keep
tests fast. The folder loads like any model folder (``LLMFusionConfig.model``).

The tokenizer splits on whitespace and punctuation and maps each word of ``words`` to one id
(anything else to ``<unk>``), so a text of n known words is exactly n tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: SmolLM2-135M-Instruct's shape: the config.json of the zoo's converted folder
#: (``crossrec.encoders.zoo``, ``data/06_models/zoo/smollm2-135m-instruct``)
SMOLLM2_135M: dict = {
    "vocab_size": 49152,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
    "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"},
    "tie_word_embeddings": True,
}
#: ids 0..3, in this order
SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")


def filler_words(n: int) -> list[str]:
    """``n`` distinct made-up words (``w0``, ``w1``, ...): a vocabulary of any size."""
    return [f"w{i}" for i in range(n)]


def save_random_llama(folder: str | Path, words: Sequence[str], seed: int = 0, **shape) -> Path:
    """Save a random ``LlamaForCausalLM`` of ``shape`` (LlamaConfig fields) and a word-level
    tokenizer over ``words`` to ``folder``, loadable by AutoModel / AutoTokenizer."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for word in words:
        vocab.setdefault(word, len(vocab))
    vocab_size = shape.get("vocab_size", LlamaConfig().vocab_size)
    if len(vocab) > vocab_size:
        raise ValueError(
            f"save_random_llama: {len(vocab)} tokens ({len(SPECIAL_TOKENS)} special + words) "
            f"do not fit vocab_size={vocab_size}"
        )
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    pad, unk, bos, eos = SPECIAL_TOKENS
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=pad, unk_token=unk, bos_token=bos, eos_token=eos
    )
    config = LlamaConfig(
        **{"pad_token_id": vocab[pad], "bos_token_id": vocab[bos], "eos_token_id": vocab[eos]},
        **shape,
    )
    torch.manual_seed(seed)
    folder = Path(folder)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
