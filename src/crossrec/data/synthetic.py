"""A small synthetic multimodal dataset with REAL media files, for offline tests.

Items belong to latent content classes that show in every modality: words in the text, colour
and shape in a PNG image, pitch and timbre in a WAV tone. Users prefer one or two classes, so a
model that reads content can learn who likes what (and a content-blind one cannot do it on
cold items). The column ``content_class`` of items.csv holds the ground truth; the generic
adapter ignores it unless configured.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

#: Per class: name, text vocabulary, RGB colour, shape, base pitch (Hz), harmonic weights.
CLASSES: tuple[dict[str, Any], ...] = (
    {
        "name": "ocean",
        "words": ["ocean", "wave", "sailor", "harbour", "tide", "coral"],
        "colour": (30, 70, 200),
        "shape": "circle",
        "pitch": 220.0,
        "harmonics": (1.0, 0.0, 0.0),
    },
    {
        "name": "forest",
        "words": ["forest", "moss", "pine", "ranger", "fern", "trail"],
        "colour": (40, 160, 60),
        "shape": "triangle",
        "pitch": 392.0,
        "harmonics": (1.0, 0.5, 0.0),
    },
    {
        "name": "desert",
        "words": ["desert", "dune", "cactus", "nomad", "mirage", "oasis"],
        "colour": (220, 180, 40),
        "shape": "square",
        "pitch": 698.0,
        "harmonics": (1.0, 0.0, 0.6),
    },
    {
        "name": "city",
        "words": ["city", "neon", "subway", "tower", "traffic", "skyline"],
        "colour": (200, 40, 50),
        "shape": "stripes",
        "pitch": 1244.0,
        "harmonics": (1.0, 0.4, 0.4),
    },
)
FILLER = ["story", "journey", "night", "friend", "secret", "summer", "letter", "road"]
SAMPLE_RATE = 8000
IMAGE_SIZE = 32


def _write_image(path: Path, cls: dict[str, Any], rng: np.random.Generator) -> None:
    from PIL import Image, ImageDraw

    colour = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in cls["colour"])
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), colour)
    draw = ImageDraw.Draw(image)
    ink = (245, 245, 245)
    lo, hi = 6 + int(rng.integers(0, 4)), 25 - int(rng.integers(0, 4))
    if cls["shape"] == "circle":
        draw.ellipse([lo, lo, hi, hi], fill=ink)
    elif cls["shape"] == "triangle":
        draw.polygon([(lo, hi), (hi, hi), ((lo + hi) // 2, lo)], fill=ink)
    elif cls["shape"] == "square":
        draw.rectangle([lo, lo, hi, hi], fill=ink)
    else:
        for x in range(2, IMAGE_SIZE, 8):
            draw.rectangle([x, 0, x + 3, IMAGE_SIZE], fill=ink)
    image.save(path, format="PNG")


def _write_audio(path: Path, cls: dict[str, Any], rng: np.random.Generator) -> None:
    import soundfile

    duration = 0.5
    t = np.arange(int(SAMPLE_RATE * duration)) / SAMPLE_RATE
    pitch = cls["pitch"] * (1.0 + rng.uniform(-0.03, 0.03))
    wave = sum(
        w * np.sin(2 * np.pi * pitch * (k + 1) * t) for k, w in enumerate(cls["harmonics"]) if w > 0
    )
    envelope = np.minimum(1.0, np.minimum(t, duration - t) * 20)  # short fade in/out
    signal = 0.5 * wave / sum(cls["harmonics"]) * envelope
    signal = signal + rng.normal(0, 0.01, size=t.shape)
    soundfile.write(str(path), signal.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")


def make_synthetic_dataset(
    root: Path,
    n_users: int = 60,
    n_items: int = 48,
    seed: int = 0,
    with_images: bool = True,
    with_audio: bool = True,
) -> Path:
    """Write a generic-adapter dataset folder under ``root`` and return it.

    Files: interactions.csv (user,item,rating,timestamp), items.csv (item,title,description,
    image_path,audio_path,content_class), words.csv (user,item,text: tags in the item's class
    vocabulary), users.csv (user,region,age: the region follows the favourite class),
    images/<item>.png, audio/<item>.wav. The same
    arguments always give the same bytes in the CSV files.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_classes = len(CLASSES)
    item_class = np.arange(n_items) % n_classes
    rng.shuffle(item_class)
    item_ids = [f"item{i:03d}" for i in range(n_items)]

    if with_images:
        (root / "images").mkdir(exist_ok=True)
    if with_audio:
        (root / "audio").mkdir(exist_ok=True)
    item_rows = []
    for item_id, c in zip(item_ids, item_class, strict=True):
        cls = CLASSES[c]
        words = list(rng.choice(cls["words"], size=4, replace=False))
        title = f"The {words[0]} {rng.choice(FILLER)}".title()
        description = " ".join(
            rng.permutation(words[1:] + list(rng.choice(FILLER, size=3, replace=False)))
        )
        image_rel = audio_rel = ""
        if with_images:
            image_rel = f"images/{item_id}.png"
            _write_image(root / image_rel, cls, rng)
        if with_audio:
            audio_rel = f"audio/{item_id}.wav"
            _write_audio(root / audio_rel, cls, rng)
        item_rows.append(
            [item_id, title, f"A {cls['name']} tale: {description}.", image_rel, audio_rel, int(c)]
        )

    inter_rows = []
    first_liked = []
    for u in range(n_users):
        liked = rng.choice(n_classes, size=int(rng.integers(1, 3)), replace=False)
        first_liked.append(int(liked[0]))
        pref_pool = np.flatnonzero(np.isin(item_class, liked))
        other_pool = np.flatnonzero(~np.isin(item_class, liked))
        n_inter = int(rng.integers(8, 17))
        n_pref = min(len(pref_pool), int(round(0.85 * n_inter)))
        n_other = min(len(other_pool), n_inter - n_pref)
        chosen = np.r_[
            rng.choice(pref_pool, n_pref, replace=False),
            rng.choice(other_pool, n_other, replace=False),
        ]
        rng.shuffle(chosen)
        times = np.sort(1_600_000_000 + rng.integers(0, 30 * 86400, size=len(chosen)))
        for i, t in zip(chosen, times, strict=True):
            rating = int(rng.integers(4, 6)) if item_class[i] in liked else int(rng.integers(1, 4))
            inter_rows.append([f"user{u:03d}", item_ids[i], rating, int(t)])

    with open(root / "items.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["item", "title", "description", "image_path", "audio_path", "content_class"]
        )
        writer.writerows(item_rows)
    with open(root / "interactions.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["user", "item", "rating", "timestamp"])
        writer.writerows(inter_rows)
    _write_words(root / "words.csv", inter_rows, item_ids, item_class, seed)
    _write_users(root / "users.csv", first_liked, seed)
    return root


#: where a user lives, by the class they like most (a user attribute that predicts taste)
REGIONS = ("coast", "woods", "sands", "town")


def _write_users(path: Path, first_liked: list[int], seed: int) -> None:
    """users.csv (user,region,age): the region follows the user's favourite class 80% of the
    time; the age is noise."""
    rng = np.random.default_rng(seed + 2)
    rows = []
    for u, liked in enumerate(first_liked):
        region = liked if rng.random() < 0.8 else int(rng.integers(len(REGIONS)))
        rows.append([f"user{u:03d}", REGIONS[region], int(rng.integers(18, 70))])
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["user", "region", "age"])
        writer.writerows(rows)


def _write_words(
    path: Path, inter_rows: list[list], item_ids: list[str], item_class: np.ndarray, seed: int
) -> None:
    """words.csv (user,item,text): for about half the interactions, the user's tags for the
    item: one or two words of its class's vocabulary (a planted category in words)."""
    rng = np.random.default_rng(seed + 1)  # its own stream: the other files keep their bytes
    index = {item: i for i, item in enumerate(item_ids)}
    rows = []
    for user, item, *_ in inter_rows:
        if rng.random() < 0.5:
            vocabulary = CLASSES[int(item_class[index[item]])]["words"]
            rows.append([user, item, " ".join(rng.choice(vocabulary, int(rng.integers(1, 3)),
                                                         replace=False))])
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["user", "item", "text"])
        writer.writerows(rows)


def synthetic_ingest_params(dataset_dir: Path, **overrides: Any) -> dict[str, Any]:
    """An ``ingest`` parameter block reading ``dataset_dir`` with the generic adapter.

    The dataset is named after the folder; ``overrides`` replace top-level blocks (e.g.
    ``validation={...}``), except ``split``, whose keys are merged over the default: a random
    split without cold-item holdout (``split={"cold_items": {"share": 0.2}}`` asks for one).
    """
    dataset_dir = Path(dataset_dir)
    params: dict[str, Any] = {
        "raw_root": str(dataset_dir.parent),
        "datasets": {
            dataset_dir.name: {
                "adapter": "generic",
                "options": {
                    "interactions_file": "interactions.csv",
                    "items_file": "items.csv",
                    "user_column": "user",
                    "item_column": "item",
                    "rating_column": "rating",
                    "timestamp_column": "timestamp",
                    "item_id_column": "item",
                    "text_columns": ["title", "description"],
                    "image_column": "image_path",
                    "audio_column": "audio_path",
                },
                "words": {"file": "words.csv", "user_column": "user", "item_column": "item"},
                "users": {
                    "file": "users.csv",
                    "id_column": "user",
                    "categorical_columns": ["region"],
                    "numeric_columns": ["age"],
                },
            }
        },
        "split": {"strategy": "random", "cold_items": {"share": 0.0}},
    }
    params["split"].update(overrides.pop("split", {}))
    params.update(overrides)
    return params


def bag_of_words(texts: list[str], dim: int = 64, normalise: bool = False) -> np.ndarray:
    """Hashed word counts (crc32 of each lower-case word, mod ``dim``): a stand-in text feature
    for the synthetic dataset, so tests of fuse / finetune / evaluate / serving need no encoder.
    ``normalise`` divides each row by its L2 norm."""
    import zlib

    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            out[row, zlib.crc32(word.encode()) % dim] += 1.0
    if normalise:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def mean_colour(paths: list[str | None], normalise: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean RGB of each image, centred on 0 (a 3-d stand-in image feature for the synthetic
    dataset, whose classes differ by colour) and the mask of items that have an image.
    ``normalise`` divides each row by its L2 norm."""
    from PIL import Image

    vectors = np.zeros((len(paths), 3), dtype=np.float32)
    mask = np.zeros(len(paths), dtype=bool)
    for row, path in enumerate(paths):
        if path:
            pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
            vectors[row] = pixels.reshape(-1, 3).mean(axis=0) - 0.5
            mask[row] = True
    if normalise:
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors, mask
