"""Small real media for upload tests (bytes, never files the server could be pointed at)."""

from __future__ import annotations

import io

import numpy as np


def png_bytes(rgb=(30, 70, 200), size=(48, 64)) -> bytes:
    from PIL import Image

    pixels = np.zeros((size[1], size[0], 3), np.uint8) + np.array(rgb, np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def bomb_png_bytes(side: int = 3000) -> bytes:
    """A few kB that decode to side x side pixels (over the test limit of 1M pixels)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (side, side)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def wav_bytes(freq: float = 220.0, seconds: float = 1.0, rate: int = 16000) -> bytes:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    out = io.BytesIO()
    sf.write(out, 0.4 * np.sin(2 * np.pi * freq * t), rate, format="WAV")
    return out.getvalue()
