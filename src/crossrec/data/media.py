"""Check that item media exist, lie in the dataset folder and decode; unusable ones are reported.

One report and one budget serve the whole run: ingest writes its entries
``{stage: "ingest", item_id, modality, path, reason}``; featurize appends the files that passed
here but failed to decode in the encoder (``stage: "featurize"``) and checks the budget
(:func:`budget_problem`) on the union, so bad files found at two stages cannot each slip under
the share on their own.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from crossrec.data.errors import MediaError

logger = logging.getLogger(__name__)

#: item-table column -> modality name in the media report.
MEDIA_COLUMNS = {"image_path": "image", "audio_path": "audio"}
#: Pipeline stages that add to the media report, in run order.
STAGES = ("ingest", "featurize")
REPORT_KEYS = ("stage", "item_id", "modality", "path", "reason")
BUDGET_PARAM = "ingest.media.max_bad_share"

#: WAV format tags whose frames are a fixed number of bytes (block_align).
_FIXED_FRAME_WAV_TAGS = {1, 3, 6, 7, 0xFFFE}  # PCM, float, A-law, mu-law, extensible
_AUDIO_BLOCK = 65536


def report_entry(stage: str, item_id: str, modality: str, path: str, reason: str) -> dict:
    """One media-report line; the same keys at every stage."""
    return {
        "stage": stage,
        "item_id": str(item_id),
        "modality": modality,
        "path": str(path),
        "reason": reason,
    }


def sort_report(entries: Iterable[dict]) -> list[dict]:
    """Report order: modality, item, then stage in run order."""
    return sorted(entries, key=lambda e: (e["modality"], e["item_id"], STAGES.index(e["stage"])))


def read_report(entries: Any, where: str = "media_report") -> list[dict]:
    """Entries of a saved report, checked; lines written before ``stage`` existed are ingest's."""
    if not isinstance(entries, list):
        raise ValueError(
            f"{where}: expected a list of report entries, got {type(entries).__name__}"
        )
    out = []
    for number, entry in enumerate(entries, 1):
        missing = [k for k in REPORT_KEYS[1:] if not isinstance(entry, dict) or k not in entry]
        stage = entry.get("stage", "ingest") if isinstance(entry, dict) else None
        if missing or stage not in STAGES:
            raise ValueError(
                f"{where}, entry {number}: expected keys {list(REPORT_KEYS)} with "
                f"stage in {list(STAGES)}, got {entry!r}"
            )
        out.append(
            report_entry(stage, entry["item_id"], entry["modality"], entry["path"], entry["reason"])
        )
    return out


def budget_problem(
    entries: Iterable[dict], n_with_path: int, modality: str, max_bad_share: float
) -> str | None:
    """Why ``modality`` is over the bad-media budget (listing every bad item), or None.

    The share is distinct bad items over ``n_with_path`` (items that declare a file of this
    modality), counting every stage's entries together.
    """
    bad = [e for e in entries if e["modality"] == modality]
    n_bad = len({e["item_id"] for e in bad})
    if not n_with_path or n_bad / n_with_path <= max_bad_share:
        return None
    listing = "\n".join(
        f"  [{e['stage']}] item {e['item_id']}: {e['path']} ({e['reason']})"
        for e in sort_report(bad)
    )
    return (
        f"{n_bad} of {n_with_path} {modality} files ({n_bad / n_with_path:.1%}) are unusable "
        f"(missing, outside the dataset folder, truncated or undecodable; ingest and "
        f"featurize counted together), more than {BUDGET_PARAM}={max_bad_share:.1%}:\n"
        f"{listing}"
    )


def optional_paths(values: pd.Series) -> pd.Series:
    """An object column of str or None (never NaN), whatever dtype pandas inferred."""
    return pd.Series(
        [None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in values],
        index=values.index,
        dtype=object,
    )


def outside_problem(path: str, root: Path | None) -> str | None:
    """Why ``path`` is not inside the dataset folder ``root`` (symlinks resolved), or None."""
    if root is None:
        return None
    resolved_root = root.resolve()
    if Path(path).resolve().is_relative_to(resolved_root):
        return None
    return f"outside the dataset folder {resolved_root}"


def wav_declared_frames(path: str | Path) -> int | None:
    """Frames the RIFF/WAVE ``data`` chunk header promises, or None when not knowable.

    libsndfile quietly shortens a WAV to the bytes present, so a cut file looks like a short
    clip; only the header tells what should be there.
    """
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        tag = block_align = None
        while len(chunk := fh.read(8)) == 8:
            name, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if name == b"fmt ":
                fmt = fh.read(size + (size & 1))
                if len(fmt) < 14:
                    return None
                tag = int.from_bytes(fmt[0:2], "little")
                block_align = int.from_bytes(fmt[12:14], "little")
            elif name == b"data":
                if tag not in _FIXED_FRAME_WAV_TAGS or not block_align or size == 0xFFFFFFFF:
                    return None  # compressed or streamed WAV: size does not give frames
                return size // block_align
            else:
                fh.seek(size + (size & 1), 1)
    return None


def audio_problem(path: str | Path) -> str | None:
    """Decode the whole file; a cut or undecodable file gets a reason, a good one None."""
    import soundfile

    declared = wav_declared_frames(path)
    held = 0
    with soundfile.SoundFile(str(path)) as handle:
        if declared is None:
            declared = handle.frames
        try:
            while len(block := handle.read(_AUDIO_BLOCK, dtype="int16", always_2d=True)):
                held += len(block)
        except Exception as err:  # noqa: BLE001 - libsndfile errors mid-stream
            return (
                f"truncated or corrupt: decoding stopped after {held} of {declared} frames "
                f"({type(err).__name__}: {err})"
            )[:300]
    if held == 0:
        return "audio has no frames"
    if held < declared:
        return f"truncated: header says {declared} frames, file holds {held}"
    return None


def media_problem(
    path: str, modality: str, root: Path | None = None, open_file: bool = True
) -> str | None:
    """Why ``path`` is not usable for ``modality``, or None when it is.

    ``root``: the dataset folder the file must resolve into (None: anywhere). ``open_file``
    False only checks the location.
    """
    outside = outside_problem(path, root)
    if outside is not None or not open_file:
        return outside
    file = Path(path)
    if not file.is_file():
        return "missing file"
    try:
        if modality == "image":
            from PIL import Image

            with Image.open(file) as image:
                image.verify()
        elif modality == "audio":
            return audio_problem(file)
        else:
            raise ValueError(f"unknown modality {modality!r}")
    except Exception as err:  # noqa: BLE001 - any decoder failure means "does not decode"
        return f"does not decode as {modality}: {type(err).__name__}: {err}"[:300]
    return None


def check_media(
    items: pd.DataFrame,
    *,
    max_bad_share: float,
    workers: int,
    items_file: str,
    root: Path | None = None,
    open_files: bool = True,
) -> tuple[pd.DataFrame, list[dict]]:
    """Return the items with unusable media paths set to None, and the report entries.

    ``root``: paths must resolve inside this folder (None allows any place). ``open_files``
    False checks only the location. Fails with the whole list when more than
    ``max_bad_share`` of one modality's declared paths are unusable (a wrong folder or pattern,
    not a few broken files).
    """
    items = items.copy()
    for column in MEDIA_COLUMNS:
        if column in items.columns:
            items[column] = optional_paths(items[column])
    report: list[dict] = []
    for column, modality in MEDIA_COLUMNS.items():
        if column not in items.columns:
            continue
        declared = items[column].notna().to_numpy()
        paths = items.loc[declared, column].tolist()
        if not paths:
            continue
        check = functools.partial(
            media_problem,
            modality=modality,
            root=root.resolve() if root is not None else None,
            open_file=open_files,
        )
        with ThreadPoolExecutor(max_workers=workers) as pool:
            problems = list(
                tqdm(
                    pool.map(check, paths),
                    total=len(paths),
                    desc=f"checking {modality} files",
                    unit="file",
                    disable=len(paths) < 200,
                    leave=False,
                )
            )
        bad_rows, found = [], []
        for (index, item_id, path), problem in zip(
            items.loc[declared, ["item_id", column]].itertuples(), problems, strict=True
        ):
            if problem is not None:
                bad_rows.append(index)
                found.append(report_entry("ingest", item_id, modality, path, problem))
        if bad_rows:
            logger.warning(
                "%d of %d %s files unusable (%.1f%%); those items keep their other "
                "modalities, see media_report",
                len(bad_rows),
                len(paths),
                modality,
                100 * len(bad_rows) / len(paths),
            )
        problem = budget_problem(found, len(paths), modality, max_bad_share)
        if problem is not None:
            raise MediaError(
                items_file,
                problem,
                column=column,
                expected="existing, decodable media files inside the dataset "
                "folder (check the folder / path pattern)",
            )
        items.loc[bad_rows, column] = None
        report.extend(found)
    return items, sort_report(report)
