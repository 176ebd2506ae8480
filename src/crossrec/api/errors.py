"""Error answers: the status says whose fault, ``detail`` says what, ``field`` names the culprit.

An error never echoes unbounded input: a rejected value is shown only when it is a short scalar
(a 100k-id list would come back whole otherwise), and a non-finite number is shown as text (JSON
has no NaN, so echoing it would itself fail).
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from crossrec.api.guard import BodyTooLarge
from crossrec.serving.catalogue import BadRequestError, UnknownIdError, clip_text

log = logging.getLogger(__name__)
#: validation errors listed in one answer (the rest are counted)
MAX_ERRORS = 10


class UploadTooLarge(BadRequestError):
    """One uploaded file over the per-file limit (HTTP 413)."""

    def __init__(self, field: str, limit: int):
        super().__init__(field, f"{field} upload is larger than {limit} bytes")


class ReloadRefused(RuntimeError):
    """The newest model version did not load; the served one stays (HTTP 500 naming both)."""

    def __init__(self, refused: str | None, serving: str, reason: str):
        which = f"model version {refused}" if refused else "the newest model version"
        super().__init__(f"{which} was refused ({reason}); still serving {serving}")
        self.refused, self.serving = refused, serving


_NOT_SHOWN = object()


def shown_input(value):
    """A rejected value as it may be echoed: short scalars as they are, non-finite numbers and
    long text clipped to text, containers left out (``_NOT_SHOWN``)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return value if abs(value) < 10**15 else clip_text(str(value))
    if isinstance(value, str):
        return clip_text(value)
    return _NOT_SHOWN


def safe_errors(errors: list[dict]) -> list[dict]:
    """Pydantic's error list with loc, msg and type kept, ``input`` and ``ctx`` bounded."""
    out = []
    for error in errors[:MAX_ERRORS]:
        item = {
            "loc": [p if isinstance(p, int) else clip_text(str(p)) for p in error.get("loc", ())],
            "msg": clip_text(str(error.get("msg", "")), 300),
            "type": str(error.get("type", "")),
        }
        shown = shown_input(error.get("input"))
        if shown is not _NOT_SHOWN:
            item["input"] = shown
        ctx = {k: shown_input(v) for k, v in (error.get("ctx") or {}).items()}
        if ctx:
            item["ctx"] = {k: clip_text(str(v)) if v is _NOT_SHOWN else v for k, v in ctx.items()}
        out.append(item)
    if len(errors) > MAX_ERRORS:
        out.append({"loc": [], "msg": f"... and {len(errors) - MAX_ERRORS} more", "type": "more"})
    return out


def add_handlers(app: FastAPI) -> None:
    """Register the error answers of the API on ``app``."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError):
        return JSONResponse({"detail": safe_errors(list(err.errors()))}, 422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, err: HTTPException):
        # a body the framework could not parse (too deeply nested JSON, bad UTF-8, broken
        # multipart) is invalid input like any other: 422, not 400
        status = 422 if err.status_code == 400 else err.status_code
        detail = clip_text(str(err.detail), 300)
        return JSONResponse({"detail": detail}, status, headers=getattr(err, "headers", None))

    @app.exception_handler(UnknownIdError)
    async def _unknown(request: Request, err: UnknownIdError):
        return JSONResponse({"detail": str(err), "field": err.kind, "id": err.value}, 404)

    @app.exception_handler(UploadTooLarge)
    async def _too_large(request: Request, err: UploadTooLarge):
        return JSONResponse({"detail": str(err), "field": err.field}, 413)

    @app.exception_handler(BodyTooLarge)
    async def _body_too_large(request: Request, err: BodyTooLarge):
        return JSONResponse({"detail": err.detail, "field": "body"}, 413)

    @app.exception_handler(BadRequestError)
    async def _bad(request: Request, err: BadRequestError):
        return JSONResponse({"detail": clip_text(str(err), 1000), "field": err.field}, 422)

    @app.exception_handler(ReloadRefused)
    async def _refused(request: Request, err: ReloadRefused):
        log.error("reload refused: %s", err)
        body = {"detail": str(err), "refused": err.refused, "model_version": err.serving}
        return JSONResponse(body, 500)

    @app.exception_handler(Exception)
    async def _crash(request: Request, err: Exception):
        log.exception("request %s failed", request.url.path)
        return JSONResponse({"detail": f"internal error ({type(err).__name__})"}, 500)
