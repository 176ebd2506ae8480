"""Media check: missing / undecodable files are reported; too many fail with the list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile
from PIL import Image

from crossrec.data.errors import MediaError
from crossrec.data.media import check_media, media_problem


@pytest.fixture()
def media(tmp_path):
    good_png = tmp_path / "good.png"
    Image.new("RGB", (4, 4), (255, 0, 0)).save(good_png)
    good_wav = tmp_path / "good.wav"
    soundfile.write(str(good_wav), np.zeros(800, dtype=np.float32), 8000)
    broken_png = tmp_path / "broken.png"
    broken_png.write_bytes(good_png.read_bytes()[:20])
    text_as_wav = tmp_path / "noise.wav"
    text_as_wav.write_text("not audio")
    return {
        "good_png": str(good_png),
        "good_wav": str(good_wav),
        "broken_png": str(broken_png),
        "bad_wav": str(text_as_wav),
        "missing": str(tmp_path / "missing.jpg"),
    }


def test_media_problem_reasons(media):
    assert media_problem(media["good_png"], "image") is None
    assert media_problem(media["good_wav"], "audio") is None
    assert media_problem(media["missing"], "image") == "missing file"
    assert "does not decode as image" in media_problem(media["broken_png"], "image")
    assert "does not decode as audio" in media_problem(media["bad_wav"], "audio")
    assert "does not decode as image" in media_problem(media["good_wav"], "image")


def test_few_bad_files_are_reported_and_item_keeps_other_modalities(media):
    items = pd.DataFrame(
        {
            "item_id": [str(i) for i in range(25)],
            "image_path": [media["good_png"]] * 23 + [media["broken_png"], None],
            "audio_path": [media["good_wav"]] * 23 + [media["good_wav"], media["missing"]],
        }
    )
    out, report = check_media(items, max_bad_share=0.1, workers=4, items_file="items.csv")
    assert out.loc[23, "image_path"] is None and out.loc[23, "audio_path"] == media["good_wav"]
    assert out.loc[24, "audio_path"] is None
    assert [(r["item_id"], r["modality"]) for r in report] == [("24", "audio"), ("23", "image")]
    assert report[1]["path"] == media["broken_png"]
    assert items.loc[23, "image_path"] == media["broken_png"]  # input not mutated


def test_too_many_bad_files_fail_with_the_list(media):
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "image_path": [media["good_png"], media["missing"], media["broken_png"]],
            "audio_path": [None] * 3,
        }
    )
    with pytest.raises(MediaError) as err:
        check_media(items, max_bad_share=0.5, workers=2, items_file="data/items.csv")
    message = str(err.value)
    assert message.startswith("data/items.csv, column 'image_path': 2 of 3 image files")
    assert media["missing"] in message and media["broken_png"] in message


# --- one report format, truncated audio, paths outside the dataset, the shared budget --------


def _sine_wav(path, frames: int = 4000, rate: int = 8000):
    """A real 440 Hz tone as 16-bit PCM WAV (``frames`` frames)."""
    t = np.arange(frames) / rate
    soundfile.write(
        str(path), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, subtype="PCM_16"
    )
    return path


def _cut(path, keep_bytes: int):
    """The file's first ``keep_bytes`` bytes only, as a truncated download leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[:keep_bytes])
    return path


def test_truncated_wav_is_reported_with_header_and_held_frames(tmp_path):
    from crossrec.data.media import wav_declared_frames

    full = _sine_wav(tmp_path / "full.wav")
    cut = _cut(_sine_wav(tmp_path / "cut.wav"), 44 + 2 * 100)  # header + 100 of 4000 frames
    assert wav_declared_frames(cut) == 4000
    assert soundfile.info(str(cut)).frames == 100  # libsndfile alone: a "normal" 12 ms clip
    assert media_problem(str(full), "audio") is None
    assert media_problem(str(cut), "audio") == "truncated: header says 4000 frames, file holds 100"


def test_truncated_flac_is_reported(tmp_path):
    flac = tmp_path / "tone.flac"
    t = np.arange(16000) / 8000
    soundfile.write(str(flac), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    assert media_problem(str(flac), "audio") is None
    _cut(flac, flac.stat().st_size // 3)
    reason = media_problem(str(flac), "audio")
    assert reason.startswith("truncated or corrupt: decoding stopped after ")
    assert "of 16000 frames" in reason


def test_wav_header_reader_ignores_other_files(tmp_path, media):
    from crossrec.data.media import wav_declared_frames

    assert wav_declared_frames(media["good_png"]) is None
    assert wav_declared_frames(media["bad_wav"]) is None
    assert wav_declared_frames(media["good_wav"]) == 800


def test_report_entries_carry_their_stage(media):
    items = pd.DataFrame(
        {
            "item_id": [str(i) for i in range(21)],
            "image_path": [media["good_png"]] * 20 + [media["missing"]],
        }
    )
    _, report = check_media(items, max_bad_share=0.05, workers=2, items_file="items.csv")
    assert report == [
        {
            "stage": "ingest",
            "item_id": "20",
            "modality": "image",
            "path": media["missing"],
            "reason": "missing file",
        }
    ]


def test_paths_outside_the_dataset_are_reported_and_never_opened(tmp_path):
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    other = tmp_path / "other_dataset"
    other.mkdir()
    inside = root / "images" / "a.png"
    Image.new("RGB", (4, 4)).save(inside)
    foreign = other / "b.png"
    Image.new("RGB", (4, 4)).save(foreign)
    (root / "images" / "link.png").symlink_to(foreign)
    paths = [str(inside)] * 22 + [
        str(root / "images" / ".." / ".." / "other_dataset" / "b.png"),
        str(root / "images" / "link.png"),
    ]
    items = pd.DataFrame({"item_id": [f"i{k:02d}" for k in range(24)], "image_path": paths})
    out, report = check_media(
        items, max_bad_share=0.1, workers=2, items_file="items.csv", root=root
    )
    reason = f"outside the dataset folder {root.resolve()}"
    assert [(r["item_id"], r["reason"]) for r in report] == [("i22", reason), ("i23", reason)]
    assert out["image_path"].isna().sum() == 2
    # location only (check: false) still confines; root None (allow_outside_dataset) allows
    _, located = check_media(
        items, max_bad_share=0.1, workers=2, items_file="items.csv", root=root, open_files=False
    )
    assert [r["item_id"] for r in located] == ["i22", "i23"]
    _, allowed = check_media(items, max_bad_share=0.1, workers=2, items_file="items.csv")
    assert allowed == []


def test_two_bad_of_24_exceed_five_percent_with_the_list(media):
    items = pd.DataFrame(
        {
            "item_id": [f"i{k:02d}" for k in range(24)],
            "image_path": [media["good_png"]] * 22 + [media["broken_png"], media["missing"]],
        }
    )
    with pytest.raises(MediaError) as err:
        check_media(items, max_bad_share=0.05, workers=2, items_file="items.csv")
    message = str(err.value)
    assert "2 of 24 image files (8.3%) are unusable" in message
    assert "ingest.media.max_bad_share=5.0%" in message
    assert f"[ingest] item i22: {media['broken_png']}" in message
    assert f"[ingest] item i23: {media['missing']} (missing file)" in message


def test_budget_counts_distinct_items_across_stages():
    from crossrec.data.media import budget_problem, report_entry

    ingest = [report_entry("ingest", "a", "image", "/d/a.png", "missing file")]
    featurize = [report_entry("featurize", "b", "image", "/d/b.png", "cannot decode image")]
    assert budget_problem(ingest, 24, "image", 0.05) is None  # 1 of 24 = 4.2%
    assert budget_problem(featurize, 24, "image", 0.05) is None
    message = budget_problem([*featurize, *ingest], 24, "image", 0.05)  # 2 of 24 = 8.3%
    assert message.startswith("2 of 24 image files (8.3%)")
    assert message.index("[ingest] item a") < message.index("[featurize] item b")
    assert budget_problem([*ingest, *ingest], 24, "image", 0.05) is None  # same item twice
    assert budget_problem([*featurize, *ingest], 24, "audio", 0.05) is None


def test_saved_report_is_checked_and_old_entries_are_ingest_ones():
    from crossrec.data.media import read_report

    old = {"item_id": "3", "modality": "image", "path": "/p", "reason": "missing file"}
    assert read_report([old]) == [{"stage": "ingest", **old}]
    with pytest.raises(ValueError, match=r"media_report, entry 1: expected keys"):
        read_report([{"item_id": "3"}])
    with pytest.raises(ValueError, match=r"media_report, entry 1: .*stage"):
        read_report([{**old, "stage": "train"}])
    with pytest.raises(ValueError, match="expected a list"):
        read_report({"failures": []})
