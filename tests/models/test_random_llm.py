"""The random-weight LLaMA stand-in (benchmarks, tests): its tokenizer, its checks, its shape."""

from __future__ import annotations

import json

import pytest

from crossrec.models.item_towers.random_llm import SMOLLM2_135M, filler_words, save_random_llama

SMALL = {
    "vocab_size": 16,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
}


def test_a_text_of_n_known_words_is_n_tokens_and_the_folder_loads(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    folder = save_random_llama(tmp_path / "llm", ["love", "war", "space"], **SMALL)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer("war love space war")["input_ids"] == [5, 4, 6, 5]
    assert tokenizer("war, robots")["input_ids"] == [5, 1, 1]  # punctuation and unknown: <unk>
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 3)
    model = AutoModel.from_pretrained(folder)
    assert model.config.num_hidden_layers == 1 and model.config.pad_token_id == 0
    again = AutoModel.from_pretrained(save_random_llama(tmp_path / "again", ["x"], **SMALL))
    assert all(  # the seed decides the weights
        (a == b).all() for a, b in zip(model.parameters(), again.parameters(), strict=True)
    )


def test_too_many_words_for_the_vocabulary_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"17 tokens \(4 special \+ words\) do not fit vocab_size"):
        save_random_llama(tmp_path / "llm", filler_words(13), **SMALL)
    assert not (tmp_path / "llm").exists()


def test_smollm2_shape_is_the_zoo_conversions():
    """SMOLLM2_135M against the converted model's config.json, where featurize made it."""
    zoo = pytest.importorskip("crossrec.encoders.zoo")
    folder = zoo.model_cache_dir() / "smollm2-135m-instruct"
    if not (folder / zoo.DONE_MARKER).exists():
        pytest.skip("SmolLM2 not converted in the zoo cache yet (run featurize once)")
    real = json.loads((folder / "config.json").read_text())
    for key, value in SMOLLM2_135M.items():
        if key == "rope_parameters":
            assert real[key]["rope_theta"] == value["rope_theta"]
        else:
            assert real[key] == pytest.approx(value), key
