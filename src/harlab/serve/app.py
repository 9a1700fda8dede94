"""The web application: FastAPI routes over the live streams (harlab.serve.live) and the review
(harlab.serve.review), the page's static files, and the rules that keep it safe by default — the only module that
imports FastAPI, Starlette and uvicorn.

Safety: bound to a loopback address, requests must name a loopback host (no DNS rebinding); bound to any other
address, a token is required and every request carries it (an `Authorization: Bearer` header, a `token` query
parameter, or the cookie the page gets when opened with `?token=`). JSON requests must say `Content-Type:
application/json` (a cross-site form cannot), bodies are limited in size and read no further than the limit, and
paths stay inside the served folder.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from harlab.deploy.predict import Smoothing, WindowModel, open_model
from harlab.errors import HarlabError
from harlab.files import atomic_open
from harlab.serve.batches import Batch, RequestError, parse_batch
from harlab.serve.live import Streams, stream_channels
from harlab.serve.review import recording_samples, recordings, review, save_labels, upload_path

logger = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
COOKIE = "harlab_token"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
QUEUE_EVENTS = 2000  # events waiting for one page before it counts as lagging
KEEPALIVE_S = 15.0
REPLAY_BATCH_S = 0.25
REPLAY_STREAM = "replay"
PREDICTING_THREADS = 4  # batches predicted at once: the model is CPU-bound, and each thread costs memory


@dataclass(frozen=True)
class ServeSettings:
    """What `harlab serve` runs with (docs/serve.md)."""

    model: Path = Path("pretrained:hapt-resnet1d")
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    folder: Path = Path(".")
    replay: Path | None = None
    speed: float = 1.0
    smoothing: Smoothing = 3
    time_column: str = "time"
    max_batch_bytes: int = 1_000_000
    max_upload_bytes: int = 50_000_000
    max_streams: int = 32

    def check(self) -> None:
        """One-line refusals: an address other machines reach without a token, a folder that is not one."""
        if not is_loopback(self.host) and not self.token:
            raise HarlabError(f"host={self.host} is reachable from other machines: give a token (set token=SECRET, "
                              "at least 16 characters) that every request must carry, or serve on 127.0.0.1")
        if self.token is not None and len(self.token) < 16:
            raise HarlabError("the token is shorter than 16 characters; give a longer one (set token=SECRET)")
        if not self.folder.is_dir():
            raise HarlabError(f"{self.folder}: not a folder; set folder=DIR to the recordings to review")
        if not self.speed > 0:
            raise HarlabError(f"speed={self.speed:g}: give a positive replay speed (1: real time)")


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine only."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Guard:
    """ASGI middleware: the token (where one is set) and, on a loopback address, a loopback Host header."""

    def __init__(self, app: ASGIApp, token: str | None, loopback: bool):
        self.app, self.token, self.loopback = app, token, loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "").rsplit(":", 1)[0].strip("[]").lower() if headers.get("host") else ""
        if self.loopback and not is_loopback(host):
            refusal = JSONResponse({"error": f"Host {host!r}: this server answers only on this machine "
                                    "(127.0.0.1 or localhost)"}, status_code=421)
            return await refusal(scope, receive, send)
        if self.token is not None and not any(hmac.compare_digest(given.encode(), self.token.encode())
                                              for given in self._tokens(scope, headers)):
            refusal = JSONResponse({"error": "missing or wrong token: open the URL harlab serve printed, or send "
                                    "the header Authorization: Bearer TOKEN"}, status_code=401)
            return await refusal(scope, receive, send)
        return await self.app(scope, receive, send)

    @staticmethod
    def _tokens(scope: Scope, headers: dict[str, str]) -> list[str]:
        """The tokens a request offers: header, query parameter, cookie."""
        offered = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            offered.append(value.strip())
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header offers nothing
            return offered
        return offered + ([cookie[COOKIE].value] if COOKIE in cookie else [])


class Hub:
    """The pages watching each stream, each with a bounded queue of events; a page that falls behind gets a
    `lagging` event and is let go (it reconnects and starts from a snapshot)."""

    def __init__(self) -> None:
        self.watchers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}

    def watch(self, name: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_EVENTS)
        self.watchers.setdefault(name, set()).add(queue)
        return queue

    def leave(self, name: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.watchers.get(name, set()).discard(queue)

    def publish(self, name: str, events: list[dict[str, Any]]) -> None:
        for queue in list(self.watchers.get(name, ())):
            if queue.qsize() + len(events) >= QUEUE_EVENTS:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"type": "lagging"})
                self.leave(name, queue)
                continue
            for event in events:
                queue.put_nowait(event)


def _server_event(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n"


async def body_chunks(request: Request, limit: int, what: str, fix: str) -> AsyncIterator[bytes]:
    """A request's body, chunk by chunk, refused (413) where its declared length is over `limit` bytes (before
    any is read) or as soon as it is read past the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"{what} of {int(declared):,} bytes is over the limit of {limit:,}; {fix}")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"{what} is over the limit of {limit:,} bytes; {fix}")
        yield chunk


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """A small request's body, whole (see `body_chunks`)."""
    fix = "send smaller ones (or raise the limit when starting harlab serve)"
    return b"".join([chunk async for chunk in body_chunks(request, limit, what, fix)])


def json_request(request: Request) -> None:
    """Refuse (415) a body that does not say it is JSON: a cross-site form cannot send one that does."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise RequestError(415, "send the body with the header Content-Type: application/json")


def create_app(settings: ServeSettings, model: WindowModel,
               replayed: tuple[np.ndarray, np.ndarray] | None = None) -> ASGIApp:
    """The application serving `model` (and replaying `replayed`: times and samples, if given)."""
    streams, hub = Streams(model, settings.smoothing, settings.max_streams), Hub()
    folder = settings.folder.resolve()

    predicting = anyio.CapacityLimiter(PREDICTING_THREADS)

    async def ingest(name: str, batch: Batch) -> dict[str, Any]:
        stream = streams.get(name)
        events = await anyio.to_thread.run_sync(stream.add, batch, limiter=predicting)
        hub.publish(name, events)
        windows = [e for e in events if e["type"] == "window"]
        return {"stream": name, "samples": batch.samples, "windows": len(windows),
                "activity": windows[-1]["activity"] if windows else None}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_replay(ingest, streams, hub, replayed, model, settings.speed)) if replayed \
            else None
        if task is not None:
            task.add_done_callback(_report_failure)
        yield
        if task is not None:
            task.cancel()

    app = FastAPI(title="harlab serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    _handle_errors(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/")
    async def page(request: Request) -> Response:
        response = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})
        if settings.token is not None and request.query_params.get("token") == settings.token:
            response.set_cookie(COOKIE, settings.token, httponly=True, samesite="strict")
        return response

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "streams": len(streams.streams)}

    @app.get("/api/model")
    async def model_info() -> dict[str, Any]:
        return {"source": str(settings.model), "classes": list(model.classes),
                "channels": list(stream_channels(model)), "rate": model.sampling_rate, "window": model.window,
                "step": model.window // 2, "smoothing": settings.smoothing, "folder": str(folder),
                "replay": REPLAY_STREAM if replayed else None}

    @app.post("/api/push")
    async def push(request: Request, stream: str | None = None) -> dict[str, Any]:
        json_request(request)
        batch = parse_batch(await read_body(request, settings.max_batch_bytes, "a batch"), stream_channels(model))
        return await ingest(stream or "phone", batch)

    @app.get("/api/live")
    async def live() -> list[dict[str, Any]]:
        return streams.summaries()

    @app.get("/api/live/events")
    async def live_events(stream: str) -> StreamingResponse:
        watched = streams.find(stream)
        queue = hub.watch(stream)

        async def feed() -> AsyncIterator[str]:
            try:
                yield _server_event(await run_in_threadpool(watched.snapshot))
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    yield _server_event(event)
                    if event["type"] == "lagging":
                        return
            finally:
                hub.leave(stream, queue)

        return StreamingResponse(feed(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.get("/api/recordings")
    async def recording_list() -> list[str]:
        return await run_in_threadpool(recordings, folder)

    @app.put("/api/recordings")
    async def upload(request: Request, name: str) -> dict[str, Any]:
        target = upload_path(folder, name)
        chunks = body_chunks(request, settings.max_upload_bytes, "the upload",
                             "review a shorter recording, or copy it into the served folder")
        size = 0
        with atomic_open(target) as handle:
            async for chunk in chunks:
                handle.write(chunk)
                size += len(chunk)
        return {"path": target.relative_to(folder).as_posix(), "bytes": size}

    @app.get("/api/review")
    async def review_recording(path: str) -> dict[str, Any]:
        return await run_in_threadpool(review, model, folder, path, settings.smoothing, settings.time_column)

    @app.post("/api/labels")
    async def labels(request: Request) -> dict[str, Any]:
        json_request(request)
        try:
            data = json.loads(await read_body(request, settings.max_batch_bytes, "a label file"))
        except (json.JSONDecodeError, RecursionError, UnicodeDecodeError):
            raise RequestError(400, "the labels are not valid JSON; send {path, intervals: [{start, end, label}]}") \
                from None
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            raise RequestError(422, "send {path, intervals: [{start, end, label}]}: path names the recording")
        saved = await run_in_threadpool(save_labels, model, folder, data["path"], data.get("intervals"),
                                        settings.time_column)
        return {"saved": saved, "intervals": len(data["intervals"])}

    return Guard(app, settings.token, is_loopback(settings.host))


def _handle_errors(app: FastAPI) -> None:
    """Every refusal is a JSON object {"error": one line}; a client gone mid-request gets nothing."""

    @app.exception_handler(RequestError)
    async def refused(request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(HarlabError)
    async def bad_input(request: Request, exc: HarlabError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": problems}, status_code=422)

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, exc: ClientDisconnect) -> Response:
        return Response(status_code=400)


async def _replay(ingest: Callable[[str, Batch], Awaitable[dict[str, Any]]], streams: Streams, hub: Hub,
                  replayed: tuple[np.ndarray, np.ndarray], model: WindowModel, speed: float) -> None:
    """Stream a recording's samples into the `replay` stream at `speed` times real time, a quarter second of
    recording at a time, through the same path as a client's batches."""
    times, values = replayed
    names = stream_channels(model)
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else model.sampling_rate
    step = max(1, round(REPLAY_BATCH_S * rate))
    loop = asyncio.get_running_loop()
    began = loop.time()
    for start in range(0, len(times), step):
        part = slice(start, start + step)
        await asyncio.sleep(max(0.0, began + (times[part][-1] - times[0]) / speed - loop.time()))
        await ingest(REPLAY_STREAM, Batch.table(times[part], values[part], names))
    stream = streams.find(REPLAY_STREAM)
    stream.status = "replay finished"
    hub.publish(REPLAY_STREAM, [{"type": "status", "status": stream.status}])


def _report_failure(task: asyncio.Task[None]) -> None:
    """A replay that stopped on an error says so in one line (a task's errors are otherwise silent)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("the replay stopped: %s", error if isinstance(error, HarlabError) else repr(error))


def serve(settings: ServeSettings, on_ready: Callable[[str], None]) -> None:
    """Open the model (and the recording to replay), bind the address, call `on_ready(url)` and serve until
    interrupted; every problem before serving is one line."""
    settings.check()
    model = open_model(settings.model)
    replayed = recording_samples(model, settings.replay, settings.time_column) if settings.replay else None
    app = create_app(settings, model, replayed)
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((settings.host, settings.port))
    except OSError as exc:
        listener.close()
        raise HarlabError(f"cannot listen on {settings.host}:{settings.port} ({exc.strerror}); choose another "
                          "port (set port=N)") from None
    listener.listen(128)
    port = listener.getsockname()[1]
    shown_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    on_ready(f"http://{shown_host}:{port}/" + (f"?token={settings.token}" if settings.token else ""))
    config = uvicorn.Config(app, log_level="warning", access_log=False, ws="none", lifespan="on",
                            limit_concurrency=8 * settings.max_streams + 64, timeout_keep_alive=5,
                            timeout_graceful_shutdown=2)  # open pages (event streams) do not hold up Ctrl-C
    uvicorn.Server(config).run(sockets=[listener])
