"""The new-item upload form: each field at most once, files copied to server-chosen names, every
file checked before anything reads it as media."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from crossrec.api.errors import UploadTooLarge
from crossrec.serving.catalogue import BadRequestError, clip_text
from crossrec.serving.config import UploadConfig
from crossrec.serving.newitem import check_upload

FILE_FIELDS = ("image", "audio")


@dataclass
class NewItemForm:
    """What the form held: text fields, file paths by field, the list length asked for."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    k: int = 10


async def read_new_item_form(
    request: Request, limits: UploadConfig, max_k: int, folder: Path
) -> NewItemForm:
    """Parse, copy and check the upload; BadRequestError names the offending field (a field
    given twice included: silently keeping one of two files would answer for the wrong one)."""
    form = await request.form(max_files=2, max_fields=20, max_part_size=limits.max_bytes)
    out, given, heads = NewItemForm(), set(), {}
    for name, value in form.multi_items():
        if name in given:
            raise BadRequestError(name, f"{clip_text(name)} is given more than once; send one")
        given.add(name)
        if name in FILE_FIELDS:
            if isinstance(value, str):
                raise BadRequestError(name, f"{name} must be a file upload")
            out.files[name], heads[name] = await _save_upload(value, name, folder, limits.max_bytes)
        elif name == "k":
            out.k = _int_field("k", value, 1, max_k)
        elif isinstance(value, str):
            if len(value) > limits.max_text_chars:
                raise BadRequestError(name, f"{name}: more than {limits.max_text_chars} characters")
            out.fields[name] = value
        else:
            raise BadRequestError(
                name, f"unexpected file field {clip_text(name)!r}; use image or audio"
            )
    for name, path in out.files.items():
        await run_in_threadpool(check_upload, path, name, heads[name], limits.max_image_pixels)
    return out


async def _save_upload(upload, field: str, folder: Path, max_bytes: int) -> tuple[str, bytes]:
    """Copy an upload to a server-chosen file (the client's filename is never used)."""
    path = folder / field
    size, head = 0, b""
    with open(path, "wb") as out:
        while chunk := await upload.read(1 << 16):
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLarge(field, max_bytes)
            head = head or chunk[:16]
            out.write(chunk)
    if size == 0:
        raise BadRequestError(field, f"{field} upload is empty")
    return str(path), head


def _int_field(name: str, value, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        shown = clip_text(str(value))
        raise BadRequestError(name, f"{name} must be an integer, got {shown!r}") from None
    if not low <= number <= high:
        raise BadRequestError(name, f"{name} must be in {low}..{high}, got {number}")
    return number
