"""Device choice and mixed precision shared by the encoders."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from crossrec.device import resolve_device

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device", "precision_name", "inference_context", "weights_identity"]


def precision_name(device: torch.device, bf16: bool) -> str:
    """What the vectors are computed in: part of the cache fingerprint (numbers differ)."""
    return "bf16-autocast" if (bf16 and device.type == "cuda") else "fp32"


@contextlib.contextmanager
def inference_context(device: torch.device, bf16: bool) -> Iterator[None]:
    """``inference_mode`` everywhere, plus bf16 autocast on CUDA when asked for."""
    import torch

    with torch.inference_mode():
        if bf16 and device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                yield
        else:
            yield


def weights_identity(folder) -> list[tuple[str, int]]:
    """Names and sizes of a model folder's weight/config files (cheap model fingerprint)."""
    from pathlib import Path

    folder = Path(folder)
    if not folder.is_dir():
        return [(str(folder), -1)]
    suffixes = {".safetensors", ".bin", ".pth", ".pt", ".json", ".gguf", ".model"}
    return sorted((p.name, p.stat().st_size) for p in folder.iterdir() if p.suffix in suffixes)
