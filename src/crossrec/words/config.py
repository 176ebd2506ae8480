"""Schemas of the words settings (``evaluate.words`` and the serving side use the same)."""

from __future__ import annotations

from pydantic import Field

from crossrec.config import StrictConfig


class TowerConfig(StrictConfig):
    """The query tower (``crossrec.words.tower``)."""

    hidden: int = Field(512, ge=0)  # 0 = linear
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    temperature: float = Field(0.05, gt=0.0)


class EncoderFinetuneConfig(StrictConfig):
    """Contrastive fine-tuning of the words encoder on (words, item text) train pairs."""

    enabled: bool = True
    epochs: int = Field(1, ge=1)
    batch_size: int = Field(32, ge=2)
    lr: float = Field(3e-5, gt=0.0)
    temperature: float = Field(0.05, gt=0.0)
    max_tokens: int = Field(64, ge=8)
    max_pairs: int | None = Field(4000, ge=1)  # a seeded sample of the train pairs; null = all
    #: keep the fine-tuned encoder in this folder (serve it with recommend.words.encoder);
    #: null = a temporary folder, removed after the evaluation
    save_to: str | None = None


class WordsConfig(StrictConfig):
    """Requests in words: encoder, tower, blend."""

    enabled: bool = True
    #: the words encoder: also encodes the item text it is compared with (a zoo name or folder)
    encoder: str = "minilm-l6"
    max_tokens: int = Field(128, ge=8)
    #: where the encoder runs and is fine-tuned: auto = CUDA when present
    device: str = "auto"
    tower: TowerConfig = TowerConfig()
    finetune: EncoderFinetuneConfig = EncoderFinetuneConfig()
    #: step of the simplex grid over (history, tower, dense) weights chosen on validation
    blend_step: float = Field(0.1, gt=0.0, le=0.5)
    k: int = Field(20, ge=1)
