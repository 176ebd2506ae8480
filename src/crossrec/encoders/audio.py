"""Audio encoders: weight-free log-mel / MFCC statistics, and optionally the Whisper encoder.

Decoding uses ``soundfile`` (libsndfile ships inside the wheel: WAV/FLAC/OGG, no system
ffmpeg), mixes any channel count to mono, resamples with torchaudio to the model's rate and
reads at most ``max_seconds`` (so a 2-hour file costs as much as a ``max_seconds`` one). Both
run their decoding and feature maths in DataLoader workers.

* ``mel``: mean and standard deviation over time of the log-mel spectrogram and of the MFCCs
  (2 * (n_mels + n_mfcc) values). No weights; a timbre / loudness / spectral-shape summary.
* ``whisper``: the Whisper encoder (zoo ``whisper-tiny``). Whisper pads every input to 30 s;
  only encoder frames that cover real audio (one per 20 ms) are averaged, and clips longer
  than 30 s are cut into 30 s windows whose pooled states are averaged by their real length.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from crossrec.data.media import wav_declared_frames
from crossrec.encoders.runtime import (
    inference_context,
    precision_name,
    resolve_device,
    weights_identity,
)
from crossrec.encoders.zoo import resolve_model

logger = logging.getLogger(__name__)

AudioKind = Literal["mel", "whisper"]


class AudioDecodeError(ValueError):
    """A file that exists but holds no usable audio."""


def decode_audio(path: str, sample_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Mono float32 waveform at ``sample_rate`` (first ``max_seconds`` only).

    A WAV cut short (fewer frames than its header promises, within the part read) is an
    error, not a short clip: libsndfile alone would quietly return what is there.
    """
    import soundfile as sf
    import torch
    import torchaudio.functional as AF

    declared = wav_declared_frames(path)
    with sf.SoundFile(path) as handle:
        native = handle.samplerate
        frames = -1 if max_seconds is None else int(math.ceil(max_seconds * native))
        data = handle.read(frames=frames, dtype="float32", always_2d=True)
        held = handle.frames
    wanted = declared if declared is None or frames < 0 else min(declared, frames)
    if wanted is not None and len(data) < wanted:
        raise AudioDecodeError(f"truncated: header says {declared} frames, file holds {held}")
    if data.size == 0:
        raise AudioDecodeError("file holds no audio samples")
    mono = data.mean(axis=1)
    if not np.isfinite(mono).all():
        raise AudioDecodeError("audio contains NaN/inf samples")
    if native != sample_rate:
        mono = AF.resample(torch.from_numpy(mono), native, sample_rate).numpy()
    return np.ascontiguousarray(mono, dtype=np.float32)


class MelStats:
    """Callable waveform -> statistics vector (built in the worker; no weights)."""

    def __init__(self, sample_rate: int = 16000, n_mels: int = 64, n_mfcc: int = 20):
        self.sample_rate, self.n_mels, self.n_mfcc = sample_rate, n_mels, n_mfcc
        self.n_fft, self.hop = 400, 160  # 25 ms windows, 10 ms hop at 16 kHz
        self._mel = self._mfcc = None
        self.dim = 2 * (n_mels + n_mfcc)

    def _transforms(self):
        import torchaudio.transforms as T

        if self._mel is None:
            mel_kwargs = {"n_fft": self.n_fft, "hop_length": self.hop, "n_mels": self.n_mels}
            self._mel = T.MelSpectrogram(self.sample_rate, **mel_kwargs)
            self._mfcc = T.MFCC(self.sample_rate, n_mfcc=self.n_mfcc, melkwargs=mel_kwargs)
        return self._mel, self._mfcc

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        import torch

        mel_t, mfcc_t = self._transforms()
        x = torch.from_numpy(wave)
        if x.numel() < self.n_fft:
            x = torch.nn.functional.pad(x, (0, self.n_fft - x.numel()))
        with torch.inference_mode():
            log_mel = torch.log(mel_t(x) + 1e-6)  # (n_mels, frames)
            mfcc = mfcc_t(x)  # (n_mfcc, frames)
        parts = [
            log_mel.mean(1),
            log_mel.std(1, unbiased=False),
            mfcc.mean(1),
            mfcc.std(1, unbiased=False),
        ]
        return torch.cat(parts).numpy().astype(np.float32)


class WhisperWindows:
    """Callable waveform -> (log-mel windows (k, n_mels, 3000), real frames per window)."""

    def __init__(self, folder: str, window_seconds: float = 30.0):
        from transformers import WhisperFeatureExtractor

        self.extractor = WhisperFeatureExtractor.from_pretrained(folder)
        self.sample_rate = int(self.extractor.sampling_rate)
        self.window = int(window_seconds * self.sample_rate)
        # encoder frames per second: mel hop (10 ms) then a stride-2 conv -> 20 ms per frame
        self.samples_per_frame = 2 * int(self.extractor.hop_length)

    def __call__(self, wave: np.ndarray):
        pieces = [wave[i : i + self.window] for i in range(0, len(wave), self.window)] or [wave]
        feats = self.extractor(pieces, sampling_rate=self.sample_rate, return_tensors="np")
        max_frames = self.window // self.samples_per_frame
        frames = [
            min(max_frames, max(1, math.ceil(len(p) / self.samples_per_frame))) for p in pieces
        ]
        return feats["input_features"].astype(np.float32), np.asarray(frames, dtype=np.int64)


class AudioFiles:
    """Map-style dataset: decode + featurise one file in a worker; failures carry a reason."""

    def __init__(
        self, paths: Sequence[str], sample_rate: int, max_seconds: float | None, featurize
    ):
        self.paths, self.sample_rate = list(paths), sample_rate
        self.max_seconds, self.featurize = max_seconds, featurize

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        try:
            wave = decode_audio(self.paths[index], self.sample_rate, self.max_seconds)
            return index, self.featurize(wave), ""
        except Exception as err:  # corrupt / unsupported file: reported, the run goes on
            return index, None, f"cannot decode audio: {type(err).__name__}: {err}"[:300]


def _collate(batch):
    return batch  # variable shapes; the encoder assembles what it needs


def _worker_init(_: int) -> None:
    import torch

    torch.set_num_threads(1)


class AudioEncoder:
    """Batched audio embedder over file paths (``kind``: ``mel`` or ``whisper``)."""

    def __init__(
        self,
        kind: AudioKind = "mel",
        model: str = "whisper-tiny",
        sample_rate: int = 16000,
        max_seconds: float = 30.0,
        n_mels: int = 64,
        n_mfcc: int = 20,
        batch_size: int = 16,
        num_workers: int = 2,
        device: str = "auto",
        bf16: bool = True,
    ):
        self.kind, self.model_name = kind, model
        self.max_seconds, self.batch_size, self.num_workers = max_seconds, batch_size, num_workers
        self.device, self.bf16 = resolve_device(device), bf16
        if kind == "mel":
            self.featurize = MelStats(sample_rate, n_mels, n_mfcc)
            self.sample_rate, self.dim, self.identity = sample_rate, self.featurize.dim, None
        elif kind == "whisper":
            from transformers import AutoConfig

            self.folder = resolve_model(model)
            self.featurize = WhisperWindows(str(self.folder))
            self.sample_rate = self.featurize.sample_rate
            self._encoder = None  # loaded on first use: a warm run never needs it
            self.dim = int(AutoConfig.from_pretrained(self.folder).d_model)
            self.identity = weights_identity(self.folder)
        else:
            raise ValueError(f"audio kind must be 'mel' or 'whisper', got {kind!r}")
        logger.info("Audio encoder %s (%d-d) on %s", kind, self.dim, self.device)

    @property
    def encoder(self):
        """The Whisper encoder (kind ``whisper`` only), loaded on first use."""
        if self.kind != "whisper":
            return None
        if self._encoder is None:
            from transformers import WhisperModel

            model = WhisperModel.from_pretrained(self.folder)
            self._encoder = model.get_encoder().to(self.device).eval()
        return self._encoder

    def settings(self) -> dict[str, Any]:
        base = {
            "kind": f"audio-{self.kind}",
            "sample_rate": self.sample_rate,
            "max_seconds": self.max_seconds,
        }
        if self.kind == "mel":
            return {**base, "n_mels": self.featurize.n_mels, "n_mfcc": self.featurize.n_mfcc}
        return {
            **base,
            "model": self.model_name,
            "weights": self.identity,
            "precision": precision_name(self.device, self.bf16),
        }

    def _loader(self, paths: Sequence[str]):
        from torch.utils.data import DataLoader

        dataset = AudioFiles(paths, self.sample_rate, self.max_seconds, self.featurize)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=_collate,
            worker_init_fn=_worker_init if self.num_workers else None,
        )

    def encode(self, paths: Sequence[str], progress: Callable[[int], None] | None = None):
        """``(vectors (n, dim) float32, ok bool (n,), {position: failure reason})``."""
        out = np.zeros((len(paths), self.dim), dtype=np.float32)
        ok = np.zeros(len(paths), dtype=bool)
        reasons: dict[int, str] = {}
        for batch in self._loader(paths):
            good = []
            for index, features, reason in batch:
                if reason:
                    reasons[index] = reason
                else:
                    good.append((index, features))
            if good and self.kind == "mel":
                for index, vector in good:
                    out[index] = vector
            elif good:
                out[[i for i, _ in good]] = self._whisper_pool([f for _, f in good])
            ok[[i for i, _ in good]] = True
            if progress is not None:
                progress(len(batch))
        return out, ok, reasons

    def _whisper_pool(self, items: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Encode all windows of a batch at once; average real frames per item."""
        import torch

        windows = torch.from_numpy(np.concatenate([w for w, _ in items])).to(self.device)
        frames = np.concatenate([f for _, f in items])
        with inference_context(self.device, self.bf16):
            hidden = self.encoder(windows).last_hidden_state.float()  # (k, 1500, d)
        steps = torch.arange(hidden.shape[1], device=hidden.device)
        mask = (steps[None, :] < torch.as_tensor(frames, device=hidden.device)[:, None]).float()
        sums = (hidden * mask[..., None]).sum(1)  # (k, d)
        out, start = [], 0
        for _, item_frames in items:
            stop = start + len(item_frames)
            out.append(sums[start:stop].sum(0) / float(item_frames.sum()))
            start = stop
        return torch.stack(out).cpu().numpy()
