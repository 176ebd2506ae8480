"""Image encoder: a timm backbone with its own preprocessing, images decoded in DataLoader workers.

A model is a zoo name (``efficientnet-lite0``), a folder holding ``config.json`` (with
``architecture``, optional ``num_classes`` and ``pretrained_cfg`` overrides) plus
``model.safetensors``, or any timm model name (``resnet50``, ``hf-hub:timm/...``) for users
whose machines can download weights. Features are timm's pre-logits (pooled) output, so the
same loaded model also classifies (used to check that converted weights are right).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossrec.encoders.runtime import (
    inference_context,
    precision_name,
    resolve_device,
    weights_identity,
)
from crossrec.encoders.zoo import CONVERTERS, PACKAGED_FOLDERS, resolve_model

logger = logging.getLogger(__name__)


def _timm_recipe(name_or_path: str) -> tuple[str, dict[str, Any], Path | None, list]:
    """(timm architecture, create_model kwargs, weights folder or None, identity)."""
    key = name_or_path.lower()
    if not (key in CONVERTERS or key in PACKAGED_FOLDERS or Path(name_or_path).is_dir()):
        # a timm name: pretrained weights via timm (needs a hub or its cache)
        return name_or_path, {"pretrained": True}, None, [("timm", name_or_path)]
    folder = resolve_model(name_or_path)
    config_file = folder / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(
            f"{folder}: an image model folder needs config.json with 'architecture'"
        )
    config = json.loads(config_file.read_text())
    if "architecture" not in config:
        raise ValueError(f"{config_file}: missing 'architecture' (a timm model name)")
    kwargs = {
        "pretrained": False,
        "num_classes": config.get("num_classes", 1000),
        "pretrained_cfg_overlay": config.get("pretrained_cfg") or None,
    }
    return config["architecture"], kwargs, folder, weights_identity(folder)


def load_timm_model(name_or_path: str):
    """``(model in eval mode with its classifier, identity for fingerprints)``."""
    import timm

    arch, kwargs, folder, identity = _timm_recipe(name_or_path)
    model = timm.create_model(arch, **kwargs)
    if folder is not None:
        weights = folder / "model.safetensors"
        if weights.exists():
            from safetensors.torch import load_file

            state = load_file(weights)
        else:
            import torch

            state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model.eval(), identity


class ImageFiles:
    """Map-style dataset: decodes and transforms one file; failures become a reason string.

    Runs inside DataLoader workers, so decoding overlaps with the forward pass and only a few
    batches of pixels are ever in memory.
    """

    def __init__(self, paths: Sequence[str], transform: Callable):
        self.paths, self.transform = list(paths), transform
        self.shape = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        import torch
        from PIL import Image

        path = self.paths[index]
        try:
            with Image.open(path) as image:
                image.load()
                tensor = self.transform(image.convert("RGB"))
            return index, tensor, ""
        except Exception as err:  # any decoder error is a per-item failure, not a crash
            reason = f"cannot decode image: {type(err).__name__}: {err}"[:300]
            return index, torch.zeros(0), reason


def collate_images(batch):
    """Stack the decodable images; failed ones keep their index and reason."""
    import torch

    good = [(i, t) for i, t, r in batch if not r]
    tensors = torch.stack([t for _, t in good]) if good else None
    failed = [(i, r) for i, _, r in batch if r]
    return [i for i, _ in good], tensors, failed


def _worker_init(_: int) -> None:
    import torch

    torch.set_num_threads(1)  # workers decode; the main process owns the cores for the model


class ImageEncoder:
    """Batched image embedder over file paths."""

    def __init__(
        self,
        model: str = "efficientnet-lite0",
        batch_size: int = 64,
        num_workers: int = 2,
        device: str = "auto",
        bf16: bool = True,
    ):
        import timm
        import torch

        self.model_name, self.batch_size, self.num_workers = model, batch_size, num_workers
        self.device = resolve_device(device)
        self.bf16 = bf16
        arch, kwargs, _, self.identity = _timm_recipe(model)
        # Shapes and preprocessing from a weightless skeleton on the meta device; the weights
        # load on first use, so a warm (all cached) run never reads them.
        with torch.device("meta"):
            skeleton = timm.create_model(arch, **{**kwargs, "pretrained": False})
        self.data_config = timm.data.resolve_data_config({}, model=skeleton)
        self.transform = timm.data.create_transform(**self.data_config)
        self.dim = int(skeleton.num_features)
        self._model = None

    @property
    def model(self):
        if self._model is None:
            import torch

            model, _ = load_timm_model(self.model_name)
            # channels-last is markedly faster for convnets on CPU (oneDNN) and on tensor cores
            self._model = model.to(self.device, memory_format=torch.channels_last)
            logger.info(
                "Image encoder %s (%d-d) loaded on %s, preprocessing %s",
                self.model_name,
                self.dim,
                self.device,
                self.data_config,
            )
        return self._model

    def settings(self) -> dict[str, Any]:
        return {
            "kind": "image",
            "model": self.model_name,
            "weights": self.identity,
            "data_config": self.data_config,
            "precision": precision_name(self.device, self.bf16),
        }

    def _loader(self, paths: Sequence[str]):
        from torch.utils.data import DataLoader

        return DataLoader(
            ImageFiles(paths, self.transform),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=collate_images,
            worker_init_fn=_worker_init if self.num_workers else None,
            pin_memory=self.device.type == "cuda",
        )

    def _run(self, paths: Sequence[str], head: bool, progress: Callable[[int], None] | None):
        import torch

        dim = self.model.num_classes if head else self.dim
        out = np.zeros((len(paths), dim), dtype=np.float32)
        ok = np.zeros(len(paths), dtype=bool)
        reasons: dict[int, str] = {}
        with inference_context(self.device, self.bf16):
            for indices, pixels, failed in self._loader(paths):
                reasons.update(failed)
                if pixels is not None:
                    pixels = pixels.to(
                        self.device, non_blocking=True, memory_format=torch.channels_last
                    )
                    features = self.model.forward_features(pixels)
                    vectors = self.model.forward_head(features, pre_logits=not head)
                    out[indices] = vectors.float().cpu().numpy()
                    ok[indices] = True
                if progress is not None:
                    progress(len(indices) + len(failed))
        return out, ok, reasons

    def encode(self, paths: Sequence[str], progress: Callable[[int], None] | None = None):
        """``(vectors (n, dim) float32, ok bool (n,), {position: failure reason})``."""
        return self._run(paths, head=False, progress=progress)

    def classify(self, paths: Sequence[str]) -> np.ndarray:
        """ImageNet (or the model's) logits; checks converted weights against known photos."""
        logits, ok, reasons = self._run(paths, head=True, progress=None)
        if not ok.all():
            raise ValueError(f"cannot classify: {reasons}")
        return logits
