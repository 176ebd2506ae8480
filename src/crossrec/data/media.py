"""Check that item media exist and decode; unreadable ones are reported and set to None."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from crossrec.data.errors import MediaError

logger = logging.getLogger(__name__)

#: item-table column -> modality name in the media report.
MEDIA_COLUMNS = {"image_path": "image", "audio_path": "audio"}


def optional_paths(values: pd.Series) -> pd.Series:
    """An object column of str or None (never NaN), whatever dtype pandas inferred."""
    return pd.Series([None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
                      for v in values], index=values.index, dtype=object)


def media_problem(path: str, modality: str) -> str | None:
    """Why ``path`` is not usable for ``modality``, or None when it decodes."""
    file = Path(path)
    if not file.is_file():
        return "missing file"
    try:
        if modality == "image":
            from PIL import Image

            with Image.open(file) as image:
                image.verify()
        elif modality == "audio":
            import soundfile

            info = soundfile.info(str(file))
            if info.frames <= 0:
                return "audio has no frames"
        else:
            raise ValueError(f"unknown modality {modality!r}")
    except Exception as err:  # noqa: BLE001 - any decoder failure means "does not decode"
        return f"does not decode as {modality}: {type(err).__name__}: {err}"[:300]
    return None


def check_media(
    items: pd.DataFrame, *, max_bad_share: float, workers: int, items_file: str
) -> tuple[pd.DataFrame, list[dict]]:
    """Return the items with unusable media paths set to None, and the report rows.

    Fails with the whole list when more than ``max_bad_share`` of one modality's declared paths
    are unusable (a wrong folder or pattern, not a few broken files).
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
        with ThreadPoolExecutor(max_workers=workers) as pool:
            problems = list(tqdm(pool.map(media_problem, paths, [modality] * len(paths)),
                                 total=len(paths), desc=f"checking {modality} files",
                                 unit="file", disable=len(paths) < 200, leave=False))
        bad_rows = []
        for (index, item_id, path), problem in zip(
            items.loc[declared, ["item_id", column]].itertuples(), problems, strict=True
        ):
            if problem is not None:
                bad_rows.append(index)
                report.append({"item_id": str(item_id), "modality": modality, "path": path,
                               "reason": problem})
        share = len(bad_rows) / len(paths)
        if bad_rows:
            logger.warning("%d of %d %s files unusable (%.1f%%); those items keep their other "
                           "modalities, see media_report", len(bad_rows), len(paths), modality,
                           100 * share)
        if share > max_bad_share:
            listing = "\n".join(f"  {r['item_id']}: {r['path']} ({r['reason']})"
                                for r in report if r["modality"] == modality)
            raise MediaError(
                items_file,
                f"{len(bad_rows)} of {len(paths)} {modality} files ({100 * share:.1f}%) are "
                f"missing or do not decode, more than media.max_bad_share="
                f"{max_bad_share:.0%}:\n{listing}",
                column=column,
                expected="existing, decodable media files (check the folder / path pattern)",
            )
        items.loc[bad_rows, column] = None
    report.sort(key=lambda r: (r["modality"], r["item_id"]))
    return items, report
