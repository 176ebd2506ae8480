"""The FastAPI app. Every endpoint takes ids (never paths) and answers from the ServingModel held
by :class:`ModelHolder`; a reload builds the new model aside and swaps one reference, so a
request in flight keeps the model it started with.

Errors: unknown ids -> 404 naming the id; bad parameters -> 422 naming the field (FastAPI's
validation for declared parameters, ``BadRequestError`` for the rest); uploads too large -> 413;
anything unexpected -> 500 without internals (the server keeps serving).
"""

import asyncio
import hmac
import logging
import os
import signal
import tempfile
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, ORJSONResponse
from pydantic import BaseModel, Field

from crossrec.serving import service
from crossrec.serving.catalogue import BadRequestError, UnknownIdError
from crossrec.serving.model import ServingModel
from crossrec.serving.newitem import check_upload
from crossrec.serving.words import fit_in_background

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
API_KEY_HEADER = "X-API-Key"


class ModelHolder:
    """The model being served; ``reload`` swaps in a newer one atomically."""

    def __init__(self, load: Callable[[], ServingModel], probe: Callable[[], str | None] | None):
        self._load, self._probe = load, probe
        self.current = load()
        fit_in_background(self.current)
        self._reload_lock = threading.Lock()

    def reload(self, force: bool = False) -> dict:
        """Load the newest trained model if it differs from the served one (or ``force``)."""
        with self._reload_lock:
            old = self.current
            newest = self._probe() if self._probe is not None else None
            if not force and newest is not None and newest == old.version:
                return {"reloaded": False, "model_version": old.version}
            fresh = self._load()
            fit_in_background(fresh)
            self.current = fresh  # one reference assignment: atomic for every reader
            log.info("serving model %s (was %s)", fresh.version, old.version)
            return {"reloaded": True, "model_version": fresh.version, "previous": old.version}


class Guard:
    """API key (when set) on /api/* except /api/health, and a cap on declared body size.

    Plain ASGI rather than ``@app.middleware("http")``: that wrapper costs a few ms per
    request, a large share of a top-K answer."""

    def __init__(self, app, api_key: str | None, max_body: int):
        self.app, self.api_key, self.max_body = app, api_key, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            problem = self._problem(scope)
            if problem is not None:
                await JSONResponse({"detail": problem[1]}, problem[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(self, scope) -> tuple[int, str] | None:
        headers = dict(scope.get("headers") or [])
        path = scope.get("path", "")
        if self.api_key and path.startswith("/api/") and path != "/api/health":
            given = headers.get(API_KEY_HEADER.lower().encode(), b"")
            if not hmac.compare_digest(given, self.api_key.encode()):
                return 401, f"missing or wrong {API_KEY_HEADER} header"
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            return 413, f"request body over {self.max_body} bytes"
        return None


class LikedRequest(BaseModel):
    """A new user: liked item ids, words (``query``), or both."""

    liked: list[str] = Field(default_factory=list, max_length=500)
    query: str | None = Field(None, max_length=5000)
    #: who a new user is (the dataset's user attributes, e.g. {"age": 31, "sex": "F"})
    attributes: dict[str, str | float | int] | None = Field(None, max_length=50)
    k: int = Field(20, ge=1)
    filters: dict[str, str] = Field(default_factory=dict)


def parse_filters(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        column, sep, wanted = value.partition(":")
        if not sep or not column or not wanted:
            raise BadRequestError("filter", f"filter {value!r}: expected attribute:value")
        out[column] = wanted
    return out


def create_app(holder: ModelHolder, api_key: str | None = None) -> FastAPI:  # noqa: C901
    config = holder.current.config
    max_k = config.max_k
    K = Annotated[int, Query(ge=1, le=max_k, description=f"list length, 1..{max_k}")]
    Words = Annotated[
        str | None,
        Query(max_length=config.words.max_chars, description="what the user asks for, in words"),
    ]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if hasattr(signal, "SIGHUP"):  # `kill -HUP <pid>` reloads, like the endpoint
            try:
                asyncio.get_running_loop().add_signal_handler(
                    signal.SIGHUP, lambda: threading.Thread(target=holder.reload).start()
                )
            except (NotImplementedError, RuntimeError):
                log.warning("SIGHUP reload is not available here; use POST /api/admin/reload")
        yield

    app = FastAPI(
        title="crossrec",
        description="Multimodal recommendations, explanations, new users and new items.",
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
    )
    app.state.holder = holder

    @app.exception_handler(UnknownIdError)
    async def _unknown(request: Request, err: UnknownIdError):
        return JSONResponse({"detail": str(err), "field": err.kind, "id": err.value}, 404)

    @app.exception_handler(UploadTooLarge)
    async def _too_large(request: Request, err: UploadTooLarge):
        return JSONResponse({"detail": str(err), "field": err.field}, 413)

    @app.exception_handler(BadRequestError)
    async def _bad(request: Request, err: BadRequestError):
        return JSONResponse({"detail": str(err), "field": err.field}, 422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, err: Exception):
        log.exception("request %s failed", request.url.path)
        return JSONResponse({"detail": f"internal error ({type(err).__name__})"}, 500)

    app.add_middleware(Guard, api_key=api_key, max_body=2 * config.upload.max_bytes + 1_000_000)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return HTMLResponse((STATIC / "index.html").read_text())

    @app.get("/api/health")
    def health():
        return {"status": "ok", "model_version": holder.current.version}

    @app.get("/api/model")
    def model_card():
        return service.model_card(holder.current)

    @app.post("/api/admin/reload")
    def reload(force: bool = False):
        return holder.reload(force)

    @app.get("/api/users")
    def users(limit: Annotated[int, Query(ge=1, le=1000)] = 50):
        return {"user_ids": [str(u) for u in holder.current.catalogue.user_ids[:limit]]}

    @app.get("/api/items")
    def items(
        q: Annotated[str, Query(max_length=200)] = "",
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ):
        serving = holder.current
        titles = serving.catalogue.items
        column = "title" if "title" in titles.columns else "item_id"
        hits = titles.index[titles[column].astype(str).str.contains(q, case=False, regex=False)]
        return {"items": [service.item_card(serving, int(i)) for i in hits[:limit]]}

    @app.get("/api/items/{item_id}/image", include_in_schema=True)
    def item_image(item_id: str):
        serving = holder.current
        row = serving.catalogue.items.iloc[serving.catalogue.item(item_id)]
        path = row.get("image_path")
        if not isinstance(path, str) or not Path(path).is_file():
            return JSONResponse({"detail": f"item {item_id!r} has no image"}, 404)
        return FileResponse(path)

    # async: the answer takes ~1 ms of CPU, less than a hand-off to the thread pool costs, so it
    # runs on the event loop (the slower endpoints below stay in the pool)
    @app.get("/api/users/{user_id}/recommendations")
    async def recommend(
        user_id: str,
        k: K = 20,
        exclude_seen: bool = True,
        filter: Annotated[list[str], Query(description="attribute:value, repeatable")] = [],  # noqa: B006
        q: Words = None,
    ):
        filters = parse_filters(filter)
        if q is not None:  # words: an encoder pass, so off the event loop
            return ORJSONResponse(
                await run_in_threadpool(
                    service.recommend_user_words, holder.current, user_id, q, k, exclude_seen,
                    filters,
                )
            )
        # a Response skips FastAPI's jsonable_encoder pass over the answer (~1/3 of its cost)
        return ORJSONResponse(
            service.recommend_user(holder.current, user_id, k, exclude_seen, filters)
        )

    @app.post("/api/recommendations")
    def recommend_liked(body: LikedRequest):
        if body.k > max_k:
            raise BadRequestError("k", f"k must be at most {max_k}, got {body.k}")
        if not body.liked and body.query is None and not body.attributes:
            raise BadRequestError(
                "liked", "liked must name at least one item id, or give a query or attributes"
            )
        if body.query is not None:
            return service.recommend_words(
                holder.current, body.query, body.liked, body.k, body.filters, body.attributes
            )
        if body.attributes and not body.liked:
            return service.recommend_attributes(
                holder.current, body.attributes, body.k, body.filters
            )
        answer = service.recommend_liked(holder.current, body.liked, body.k, body.filters)
        if body.attributes:  # who a user is counts only while there is no history
            answer["attributes_used"] = False
        return answer

    @app.get("/api/search")
    def search(
        q: Annotated[str, Query(max_length=config.words.max_chars, description="what to find")],
        k: K = 20,
        filter: Annotated[list[str], Query(description="attribute:value, repeatable")] = [],  # noqa: B006
    ):
        """The catalogue ranked for the words alone (no user, no history)."""
        return service.search(holder.current, q, k, parse_filters(filter))

    @app.get("/api/items/{item_id}/similar")
    async def similar(item_id: str, k: K = 10, modality: str | None = None):
        return ORJSONResponse(service.similar(holder.current, item_id, k, modality))

    @app.get("/api/users/{user_id}/explain/{item_id}")
    def explain(user_id: str, item_id: str, llm: bool = False):
        return service.explain(holder.current, user_id, item_id, llm)

    @app.post("/api/items/new")
    async def new_item(request: Request):
        serving = holder.current
        limits = serving.config.upload
        form = await request.form(max_files=2, max_fields=20, max_part_size=limits.max_bytes)
        files, fields, k = {}, {}, 10
        with tempfile.TemporaryDirectory(prefix="crossrec-upload-") as tmp:
            for name, value in form.multi_items():
                if name in ("image", "audio"):
                    if isinstance(value, str):
                        raise BadRequestError(name, f"{name} must be a file upload")
                    files[name] = await _save_upload(value, name, Path(tmp), limits.max_bytes)
                elif name == "k":
                    k = _int_field("k", value, 1, max_k)
                elif isinstance(value, str):
                    if len(value) > limits.max_text_chars:
                        raise BadRequestError(
                            name, f"{name}: more than {limits.max_text_chars} characters"
                        )
                    fields[name] = value
                else:
                    raise BadRequestError(
                        name, f"unexpected file field {name!r}; use image or audio"
                    )
            for name, (path, head) in files.items():
                await run_in_threadpool(check_upload, path, name, head, limits.max_image_pixels)
            return await run_in_threadpool(
                service.new_item,
                serving,
                fields,
                files.get("image", (None,))[0],
                files.get("audio", (None,))[0],
                k,
            )

    return app


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


class UploadTooLarge(BadRequestError):
    def __init__(self, field: str, limit: int):
        super().__init__(field, f"{field} upload is larger than {limit} bytes")


def _int_field(name: str, value, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequestError(name, f"{name} must be an integer, got {value!r}") from None
    if not low <= number <= high:
        raise BadRequestError(name, f"{name} must be in {low}..{high}, got {number}")
    return number


def api_key_from_env(host: str, variable: str = "CROSSREC_API_KEY") -> str | None:
    """The API key; required (RuntimeError) when binding to anything but loopback."""
    key = os.environ.get(variable) or None
    loopback = host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
    if not loopback and not key:
        raise RuntimeError(
            f"--host {host} exposes the API beyond this machine: set {variable} to an API key "
            f"(clients send it as the {API_KEY_HEADER} header)"
        )
    return key
