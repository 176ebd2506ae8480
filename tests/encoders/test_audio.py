"""Audio: soundfile decoding (mono/stereo, resampling, any length), mel statistics, Whisper."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.encoders.audio import AudioDecodeError, MelStats, decode_audio


def test_decode_mixes_to_mono_resamples_and_caps_length(media, make_tone, tmp_path):
    wave = decode_audio(str(media["high"]), 16000)  # 1 s stereo at 44.1 kHz
    assert wave.ndim == 1 and wave.dtype == np.float32
    assert abs(len(wave) - 16000) <= 2
    long = make_tone(tmp_path / "long.wav", 440.0, 5.0, rate=8000)
    assert abs(len(decode_audio(str(long), 16000, max_seconds=2.0)) - 32000) <= 2
    with pytest.raises(RuntimeError):  # soundfile.LibsndfileError
        decode_audio(str(media["bad_wav"]), 16000)


def test_empty_file_is_an_error(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "empty.wav", np.zeros((0,), dtype=np.float32), 16000)
    with pytest.raises(AudioDecodeError, match="no audio"):
        decode_audio(str(tmp_path / "empty.wav"), 16000)


def test_cut_wav_is_an_error_not_a_short_clip(make_tone, tmp_path):
    wav = make_tone(tmp_path / "tone.wav", 440.0, 0.5, rate=8000)  # 4000 16-bit frames
    data = wav.read_bytes()
    assert len(data) == 44 + 2 * 4000
    wav.write_bytes(data[: 44 + 2 * 100])
    with pytest.raises(AudioDecodeError, match="header says 4000 frames, file holds 100"):
        decode_audio(str(wav), 16000)
    # reading only the part that is there is fine: the cut lies beyond max_seconds
    assert len(decode_audio(str(wav), 8000, max_seconds=0.01)) == 80
    with pytest.raises(AudioDecodeError, match="truncated"):
        decode_audio(str(wav), 8000, max_seconds=0.02)  # 160 frames wanted, 100 held


def test_mel_statistics_follow_pitch(media):
    stats = MelStats(16000, n_mels=32, n_mfcc=10)
    low = stats(decode_audio(str(media["low"]), 16000))
    high = stats(decode_audio(str(media["high"]), 16000))
    assert low.shape == high.shape == (stats.dim,) == (84,)
    # the loudest mel band of a 220 Hz tone sits below the one of a 3 kHz tone
    assert int(np.argmax(low[:32])) < int(np.argmax(high[:32]))
    tiny = stats(np.zeros(10, dtype=np.float32) + 0.1)  # shorter than one FFT window
    assert np.isfinite(tiny).all()


def test_mel_encoder_batches_and_reports_bad_files(media):
    from crossrec.encoders.audio import AudioEncoder

    enc = AudioEncoder(kind="mel", batch_size=2, num_workers=0, device="cpu")
    paths = [str(media["low"]), str(media["bad_wav"]), str(media["high"])]
    vectors, ok, reasons = enc.encode(paths)
    assert vectors.shape == (3, 168)
    assert ok.tolist() == [True, False, True] and "cannot decode audio" in reasons[1]


def test_whisper_pools_only_frames_of_real_audio(zoo_dir, media, make_tone, tmp_path):
    from crossrec.encoders.audio import AudioEncoder

    enc = AudioEncoder(kind="whisper", batch_size=4, num_workers=0, device="cpu")
    assert enc.dim == 384
    captured = []  # the encoder's own output, captured during encode (one forward pass only)
    hook = enc.encoder.register_forward_hook(
        lambda module, args, out: captured.append(out.last_hidden_state[0].float().clone())
    )
    vectors, ok, _ = enc.encode([str(media["low"])])
    hook.remove()
    assert ok.all() and np.isfinite(vectors).all()
    # 1 s of audio = 50 encoder frames (20 ms each); the other 1450 cover Whisper's padding
    _, frames = enc.featurize(decode_audio(str(media["low"]), 16000))
    assert frames.tolist() == [50]
    hidden = captured[0].numpy()
    assert hidden.shape == (1500, 384)
    np.testing.assert_allclose(vectors[0], hidden[:50].mean(0), atol=1e-5)
    assert not np.allclose(vectors[0], hidden.mean(0), atol=1e-2)
    # clips longer than 30 s become several windows, each pooled over its real frames
    long = make_tone(tmp_path / "long.wav", 330.0, 31.0, rate=16000)
    feats_long, frames_long = enc.featurize(decode_audio(str(long), 16000))
    assert feats_long.shape == (2, 80, 3000) and frames_long.tolist() == [1500, 50]
