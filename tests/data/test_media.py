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
    return {"good_png": str(good_png), "good_wav": str(good_wav),
            "broken_png": str(broken_png), "bad_wav": str(text_as_wav),
            "missing": str(tmp_path / "missing.jpg")}


def test_media_problem_reasons(media):
    assert media_problem(media["good_png"], "image") is None
    assert media_problem(media["good_wav"], "audio") is None
    assert media_problem(media["missing"], "image") == "missing file"
    assert "does not decode as image" in media_problem(media["broken_png"], "image")
    assert "does not decode as audio" in media_problem(media["bad_wav"], "audio")
    assert "does not decode as image" in media_problem(media["good_wav"], "image")


def test_few_bad_files_are_reported_and_item_keeps_other_modalities(media):
    items = pd.DataFrame({
        "item_id": [str(i) for i in range(25)],
        "image_path": [media["good_png"]] * 23 + [media["broken_png"], None],
        "audio_path": [media["good_wav"]] * 23 + [media["good_wav"], media["missing"]],
    })
    out, report = check_media(items, max_bad_share=0.1, workers=4, items_file="items.csv")
    assert out.loc[23, "image_path"] is None and out.loc[23, "audio_path"] == media["good_wav"]
    assert out.loc[24, "audio_path"] is None
    assert [(r["item_id"], r["modality"]) for r in report] == [("24", "audio"), ("23", "image")]
    assert report[1]["path"] == media["broken_png"]
    assert items.loc[23, "image_path"] == media["broken_png"]  # input not mutated


def test_too_many_bad_files_fail_with_the_list(media):
    items = pd.DataFrame({"item_id": ["a", "b", "c"],
                          "image_path": [media["good_png"], media["missing"], media["broken_png"]],
                          "audio_path": [None] * 3})
    with pytest.raises(MediaError) as err:
        check_media(items, max_bad_share=0.5, workers=2, items_file="data/items.csv")
    message = str(err.value)
    assert message.startswith("data/items.csv, column 'image_path': 2 of 3 image files")
    assert media["missing"] in message and media["broken_png"] in message
