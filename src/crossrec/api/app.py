"""The FastAPI app. Every endpoint takes ids (never paths) and answers from the ServingModel held
by :class:`ModelHolder`; a reload builds the new model aside and swaps one reference, so a
request in flight keeps the model it started with.

Errors (crossrec.api.errors): unknown ids -> 404 naming the id; bad input -> 422 naming the
field; bodies or uploads too large -> 413; a refused reload -> 500 naming the version; anything
unexpected -> 500 without internals (the server keeps serving). Ids are trimmed of surrounding
whitespace wherever they come from, as ingest trims them.
"""

import asyncio
import logging
import signal
import tempfile
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, ORJSONResponse
from pydantic import BaseModel, ConfigDict, Field

from crossrec.api.docs import add_offline_docs
from crossrec.api.errors import ReloadRefused, add_handlers
from crossrec.api.guard import (
    SESSION_COOKIE,
    Guard,
    api_key_from_env,
    same_secret,
    session_token,
)
from crossrec.api.uploads import read_new_item_form
from crossrec.serving import service
from crossrec.serving.catalogue import BadRequestError, clip_text
from crossrec.serving.model import ServingModel
from crossrec.serving.words import fit_in_background

__all__ = ["ModelHolder", "api_key_from_env", "create_app", "parse_filters"]

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
#: JSON bodies (a new user's likes, words, attributes) are far smaller than this
MAX_JSON_BYTES = 1_000_000
FILTER_HELP = (
    "attribute:value, repeatable. Values of one attribute are alternatives (OR): "
    "filter=genres:Comedy&filter=genres:Drama keeps items of either genre; filters on "
    "different attributes must all hold (AND). A value matches when the attribute contains it, "
    "case-insensitive; item_id must match whole."
)


def failure_reason(err: BaseException, limit: int = 300) -> str:
    """The innermost cause of a failure, as 'Type: message' (a DatasetError wraps the
    unpickling error that says what is wrong with the file)."""
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__
    return clip_text(f"{type(err).__name__}: {err}".strip(), limit)


class ModelHolder:
    """The model being served; ``reload`` swaps in a newer one atomically."""

    def __init__(self, load: Callable[[], ServingModel], probe: Callable[[], str | None] | None):
        self._load, self._probe = load, probe
        self.current = load()
        fit_in_background(self.current)
        self._reload_lock = threading.Lock()

    def reload(self, force: bool = False) -> dict:
        """Load the newest trained model if it differs from the served one (or ``force``).
        A version that does not load is refused (ReloadRefused) and the served one stays."""
        with self._reload_lock:
            old = self.current
            newest = self._probe() if self._probe is not None else None
            if not force and newest is not None and newest == old.version:
                return {"reloaded": False, "model_version": old.version}
            try:
                fresh = self._load()
            except Exception as err:  # noqa: BLE001 - any load failure keeps the old model
                raise ReloadRefused(newest, old.version, failure_reason(err)) from err
            fit_in_background(fresh)
            self.current = fresh  # one reference assignment: atomic for every reader
            log.info("serving model %s (was %s)", fresh.version, old.version)
            return {"reloaded": True, "model_version": fresh.version, "previous": old.version}

    def reload_logged(self) -> None:
        """``reload`` for a signal: nobody waits for the answer, so a refusal is logged."""
        try:
            self.reload()
        except ReloadRefused as err:
            log.error("reload refused: %s", err)


class LikedRequest(BaseModel):
    """A new user: liked item ids, words (``query``), or both."""

    #: JSON has no NaN or Infinity: such a number is invalid input, not a value
    model_config = ConfigDict(allow_inf_nan=False)

    liked: list[str] = Field(default_factory=list, max_length=500)
    query: str | None = Field(None, max_length=5000)
    #: who a new user is (the dataset's user attributes, e.g. {"age": 31, "sex": "F"})
    attributes: dict[str, str | float | int] | None = Field(None, max_length=50)
    k: int = Field(20, ge=1)
    filters: dict[str, str | list[str]] = Field(
        default_factory=dict, max_length=20, description=FILTER_HELP
    )


class SignIn(BaseModel):
    """The API key, exchanged for a session cookie (the page's images cannot send headers)."""

    key: str = Field(max_length=1000)


def parse_filters(values: list[str]) -> dict[str, list[str]]:
    """``attribute:value`` strings grouped by attribute: repeated attributes are alternatives."""
    out: dict[str, list[str]] = {}
    for value in values:
        column, sep, wanted = (part.strip() for part in value.partition(":"))
        if not sep or not column or not wanted:
            shown = clip_text(value)
            raise BadRequestError("filter", f"filter {shown!r}: expected attribute:value")
        out.setdefault(column, []).append(wanted)
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
                    signal.SIGHUP, lambda: threading.Thread(target=holder.reload_logged).start()
                )
            except (NotImplementedError, RuntimeError):
                log.warning("SIGHUP reload is not available here; use POST /api/admin/reload")
        yield

    app = FastAPI(
        title="crossrec",
        description="Multimodal recommendations, explanations, new users and new items.",
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
        docs_url=None,
        redoc_url=None,
    )
    app.state.holder = holder
    add_handlers(app)
    add_offline_docs(app)
    app.add_middleware(
        Guard,
        api_key=api_key,
        max_body=MAX_JSON_BYTES,
        body_limits={"/api/items/new": 2 * config.upload.max_bytes + 1_000_000},
    )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return HTMLResponse((STATIC / "index.html").read_text())

    @app.get("/api/health")
    def health():
        return {"status": "ok", "model_version": holder.current.version}

    @app.post("/api/session")
    def sign_in(body: SignIn, request: Request, response: Response):
        """Exchange the API key for an HttpOnly, SameSite=Strict session cookie: the page's
        requests, images included, then carry it without the key sitting in the page."""
        if api_key is None:
            return {"signed_in": True, "key_required": False}
        if not same_secret(body.key, api_key):
            return JSONResponse({"detail": "wrong API key", "field": "key"}, 401)
        response.set_cookie(
            SESSION_COOKIE,
            session_token(api_key),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return {"signed_in": True, "key_required": True}

    @app.delete("/api/session")
    def sign_out(response: Response):
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return {"signed_in": False}

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
        filter: Annotated[list[str], Query(description=FILTER_HELP)] = [],  # noqa: B006
        q: Words = None,
    ):
        filters = parse_filters(filter)
        if q is not None:  # words: an encoder pass, so off the event loop
            return ORJSONResponse(
                await run_in_threadpool(
                    service.recommend_user_words,
                    holder.current,
                    user_id,
                    q,
                    k,
                    exclude_seen,
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
        filter: Annotated[list[str], Query(description=FILTER_HELP)] = [],  # noqa: B006
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
        with tempfile.TemporaryDirectory(prefix="crossrec-upload-") as tmp:
            form = await read_new_item_form(request, serving.config.upload, max_k, Path(tmp))
            return await run_in_threadpool(
                service.new_item,
                serving,
                form.fields,
                form.files.get("image"),
                form.files.get("audio"),
                form.k,
            )

    return app
