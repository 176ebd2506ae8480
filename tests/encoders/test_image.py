"""Image encoder: the converted EfficientNet-Lite0 recognises a real photo; tiny PNGs; bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

#: A real photograph shipped with matplotlib (Grace Hopper in US Navy uniform, public domain).
GRACE_HOPPER = Path(__import__("matplotlib").get_data_path()) / "sample_data" / "grace_hopper.jpg"
MILITARY_UNIFORM, MORTARBOARD, ACADEMIC_GOWN, BOW_TIE, SUIT = 652, 667, 400, 457, 834


def test_known_photo_gets_its_imagenet_class(image_encoder):
    if not GRACE_HOPPER.exists():
        pytest.skip("matplotlib sample photo not installed")
    logits = image_encoder.classify([str(GRACE_HOPPER)])[0]
    top5 = set(np.argsort(-logits)[:5].tolist())
    assert int(np.argmax(logits)) == MILITARY_UNIFORM
    assert top5 & {MORTARBOARD, ACADEMIC_GOWN, BOW_TIE, SUIT}


def test_preprocessing_comes_from_the_model(image_encoder):
    cfg = image_encoder.data_config
    assert cfg["input_size"] == (3, 224, 224)
    assert cfg["mean"] == pytest.approx((0.485, 0.456, 0.406))


def test_tiny_images_encode_to_1280d_and_bad_files_are_reported(image_encoder, media):
    paths = [str(media["red"]), str(media["bad_png"]), str(media["blue"])]
    vectors, ok, reasons = image_encoder.encode(paths)
    assert vectors.shape == (3, 1280) and vectors.dtype == np.float32
    assert ok.tolist() == [True, False, True]
    assert set(reasons) == {1} and "cannot decode image" in reasons[1]
    assert not np.allclose(vectors[0], vectors[2])
    assert np.all(vectors[1] == 0)


def test_workers_give_the_same_vectors(zoo_dir, media):
    from crossrec.encoders.image import ImageEncoder

    paths = [str(media["red"]), str(media["blue"]), str(media["bad_png"])]
    inline = ImageEncoder(batch_size=2, num_workers=0, device="cpu").encode(paths)
    workers = ImageEncoder(batch_size=2, num_workers=2, device="cpu").encode(paths)
    np.testing.assert_allclose(inline[0], workers[0], atol=1e-5)
    assert inline[1].tolist() == workers[1].tolist() == [True, True, False]


def test_folder_without_config_fails_clearly(tmp_path):
    from crossrec.encoders.image import load_timm_model

    with pytest.raises(FileNotFoundError, match="config.json"):
        load_timm_model(str(tmp_path))
