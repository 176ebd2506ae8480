"""Optional downloader for users who are online: MovieLens-100K from GroupLens.

The offline path never needs this module. It fetches ``ml-100k.zip``, checks the sha256 of every
file it uses against the published GroupLens files, and writes a dataset folder that the
``movielens_multimodal`` adapter reads (text = title, genres, year; no posters or plots, which
GroupLens does not ship): ``python -m crossrec.data.download movielens100k --root data/01_raw``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import logging
import urllib.request
import zipfile
from pathlib import Path

logger = logging.getLogger(__name__)

ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
#: sha256 of the GroupLens ml-100k files (identical to ../shared/data/.../ml-100k/).
ML100K_SHA256 = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
}
GENRES = ["genre_unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime",
          "Documentary", "Drama", "Fantasy", "FilmNoir", "Horror", "Musical", "Mystery",
          "Romance", "SciFi", "Thriller", "War", "Western"]


class ChecksumError(RuntimeError):
    """A downloaded file is not the published one."""


def fetch(url: str, timeout: float = 60.0) -> bytes:
    logger.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed URL)
        return response.read()


def verified_members(archive: bytes, expected: dict[str, str], source: str) -> dict[str, bytes]:
    """The expected members of a zip (matched by base name), each checked by sha256."""
    out: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        by_name = {Path(n).name: n for n in zf.namelist()}
        for name, digest in expected.items():
            if name not in by_name:
                raise ChecksumError(f"{source}: {name} is missing from the archive")
            data = zf.read(by_name[name])
            actual = hashlib.sha256(data).hexdigest()
            if actual != digest:
                raise ChecksumError(f"{source}: {name} has sha256 {actual}, expected {digest}; "
                                    "the download is corrupt or not the GroupLens release")
            out[name] = data
    return out


def write_movielens100k(files: dict[str, bytes], folder: Path) -> Path:
    """ratings.csv + items.csv in the layout of parameters_ingest.yml's movielens100k entry."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "ratings.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["user_id", "movie_id", "rating", "unix_timestamp"])
        for line in files["u.data"].decode("latin-1").splitlines():
            if line.strip():
                writer.writerow(line.split("\t"))
    with open(folder / "items.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["movie_id", "title", *GENRES, "year"])
        for line in files["u.item"].decode("latin-1").splitlines():
            if not line.strip():
                continue
            fields = line.split("|")
            release = fields[2]
            year = release[-4:] if len(release) >= 4 and release[-4:].isdigit() else ""
            writer.writerow([fields[0], fields[1], *fields[5:5 + len(GENRES)], year])
    return folder


def download_movielens100k(root: Path, name: str = "movielens100k",
                           url: str = ML100K_URL) -> Path:
    """Download, verify and convert MovieLens-100K into ``root/name``; returns the folder."""
    files = verified_members(fetch(url), ML100K_SHA256, url)
    return write_movielens100k(files, Path(root) / name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["movielens100k"])
    parser.add_argument("--root", default="data/01_raw", help="raw-data root folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    folder = download_movielens100k(Path(args.root), args.dataset)
    print(f"wrote {folder}; run: kedro run --pipelines ingest --params dataset={args.dataset}")


if __name__ == "__main__":
    main()
