"""Shared fixtures of the encoder tests: one cached copy of converted weights for the session,
loaded encoders reused across tests, and tiny real media written into tmp folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def zoo_dir() -> Path:
    """Converted weights live in the project's cache (converted once, reused by later runs)."""
    path = Path(os.environ.get("CROSSREC_MODEL_CACHE") or PROJECT_ROOT / "data/06_models/zoo")
    previous = os.environ.get("CROSSREC_MODEL_CACHE")
    os.environ["CROSSREC_MODEL_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("CROSSREC_MODEL_CACHE", None)
    else:
        os.environ["CROSSREC_MODEL_CACHE"] = previous


@pytest.fixture(scope="session")
def minilm(zoo_dir):
    from crossrec.encoders.text import TextEncoder

    return TextEncoder("minilm-l6", pooling="mean", batch_size=4, device="cpu", max_tokens=64)


@pytest.fixture(scope="session")
def image_encoder(zoo_dir):
    from crossrec.encoders.image import ImageEncoder

    return ImageEncoder("efficientnet-lite0", batch_size=4, num_workers=0, device="cpu")


def write_png(path: Path, rgb: tuple[int, int, int], size=(40, 56), stripes: bool = False) -> Path:
    from PIL import Image

    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8) + np.array(rgb, dtype=np.uint8)
    if stripes:
        pixels[::4] = 255 - pixels[::4]
    Image.fromarray(pixels).save(path)
    return path


def write_tone(
    path: Path, freq: float, seconds: float, rate: int = 22050, channels: int = 1
) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    wave = 0.4 * np.sin(2 * np.pi * freq * t)
    if channels > 1:
        wave = np.stack([wave * (1 - 0.3 * c) for c in range(channels)], axis=1)
    sf.write(path, wave.astype(np.float32), rate)
    return path


@pytest.fixture()
def media(tmp_path: Path) -> dict[str, Path]:
    """Two good PNGs, one corrupt PNG, tones as WAV (mono, stereo), one corrupt WAV."""
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    return {
        "red": write_png(tmp_path / "red.png", (220, 20, 20)),
        "blue": write_png(tmp_path / "blue.png", (20, 20, 220), stripes=True),
        "bad_png": tmp_path / "bad.png",
        "missing_png": tmp_path / "nope.png",
        "low": write_tone(tmp_path / "low.wav", 220.0, 1.0),
        "high": write_tone(tmp_path / "high.wav", 3000.0, 1.0, rate=44100, channels=2),
        "bad_wav": tmp_path / "bad.wav",
    }


@pytest.fixture(scope="session")
def make_png():
    return write_png


@pytest.fixture(scope="session")
def make_tone():
    return write_tone
