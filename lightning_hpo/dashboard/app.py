"""The dashboard's ASGI app: three HTML pages and a JSON API, all read-only (GET only).

Pages carry no data: they are one static shell whose script fetches the JSON and writes it into the
page with ``textContent`` and plotly.js, so a study name or a traceback is never parsed as HTML.
Names travel in query strings (``/study?name=...``), never in paths, so a name with ``/``, ``..``
or ``%`` is just a value.
"""

from __future__ import annotations

import contextlib
import hmac
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from lightning_hpo.dashboard._data import StudyFeed
from lightning_hpo.dashboard._rows import plain_mapping
from lightning_hpo.exceptions import InvalidArgumentError, LightningHPOError, StudyNotFoundError
from lightning_hpo.snapshot import StudySnapshot
from lightning_hpo.storage import Storage
from lightning_hpo.trial import TrialState

__all__ = ["create_app", "TOKEN_COOKIE"]

STATIC_DIR = Path(__file__).parent / "static"
#: The cookie that carries ``--token`` after the first page opened with ``?token=...``.
TOKEN_COOKIE = "lightning_hpo_token"
#: Above this many COMPLETE trials the page asks for importance() in Python: an exact GP fit takes minutes.
MAX_IMPORTANCE_TRIALS = 2000
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~-]*")
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{8,}")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
_SECURITY_HEADERS = {
    # Scripts and styles only from this server (no inline script, no CDN), no framing. plotly's WebGL
    # charts (parallel coordinates) compile their shaders' glue code with `new Function`: 'unsafe-eval'.
    "content-security-policy": "default-src 'self'; script-src 'self' 'unsafe-eval'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _plotly_js() -> Path:
    """plotly.js as the installed ``plotly`` package ships it: the dashboard works offline."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class _Guard:
    """Security headers on every response; with a token, requests without it get 401."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        from_query = request.query_params.get("token")
        if self.token is not None and not any(
            candidate is not None and hmac.compare_digest(candidate.encode(), self.token.encode())
            for candidate in (from_query, request.cookies.get(TOKEN_COOKIE), _bearer(request))
        ):
            response: Response = PlainTextResponse(
                "401: this dashboard needs its token: open the URL it printed (with ?token=...).", status_code=401
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend((k.encode(), v.encode()) for k, v in _SECURITY_HEADERS.items())
                if self.token is not None and from_query is not None:
                    cookie = f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                    headers.append((b"set-cookie", cookie.encode()))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[len("Bearer ") :] if header.startswith("Bearer ") else None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _int_param(request: Request, name: str, default: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None and default is not None:
        return default
    try:
        return int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a whole number, but got {raw!r}.") from None


def create_app(storage: Storage, *, token: str | None = None, allowed_hosts: list[str] | None = None) -> ASGIApp:
    """The dashboard over ``storage``.

    Args:
        storage: the studies to show; only read.
        token: when given, every request must carry it (``?token=``, then a cookie, or
            ``Authorization: Bearer``).
        allowed_hosts: ``Host`` headers accepted (``["*"]`` for any); by default the local names, so a
            web page elsewhere cannot reach a local dashboard through DNS rebinding.
    """
    if token is not None and not _TOKEN.fullmatch(token):
        others = "" if _TOKEN_CHARS.fullmatch(token) else ", some of them other characters"
        raise InvalidArgumentError(
            "`token` must be at least 8 characters, each a letter, a digit or one of . _ ~ - (it travels in a URL "
            f"and a cookie), but got one of {len(token)} characters{others}. "
            "Make one with: python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    feed = StudyFeed(storage)
    importance_cache: dict[tuple[str, int, int], dict[str, Any]] = {}

    async def page(_: Request) -> Response:
        return FileResponse(STATIC_DIR / "page.html", media_type="text/html")

    async def studies(_: Request) -> Response:
        def read() -> list[dict[str, Any]]:
            return [feed.summary(s.name) for s in storage.list_studies()]

        return JSONResponse({"storage": storage.display_url, "studies": await run_in_threadpool(read)})

    async def study(request: Request) -> Response:
        name = request.query_params.get("name", "")
        try:
            since = _int_param(request, "since", 0)
            return Response(await run_in_threadpool(feed.changes_json, name, since), media_type="application/json")
        except StudyNotFoundError as error:
            return _error(404, str(error))
        except ValueError as error:
            return _error(400, str(error))

    async def trial(request: Request) -> Response:
        name = request.query_params.get("study", "")
        try:
            number = _int_param(request, "number")
            found = await run_in_threadpool(feed.trial, name, number)
        except StudyNotFoundError as error:
            return _error(404, str(error))
        except ValueError as error:
            return _error(400, str(error))
        if found is None:
            count = feed.n_trials(name)
            return _error(404, f"Study {name!r} has no trial {number} (it has {count}, from 0).")
        return JSONResponse(found)

    async def importance(request: Request) -> Response:
        from lightning_hpo.importance import importance as compute

        name = request.query_params.get("name", "")
        try:
            objective = _int_param(request, "objective", 0)
            summary = await run_in_threadpool(feed.summary, name)
            key = (name, objective, summary["states"][TrialState.COMPLETE.value])
            if key[2] > MAX_IMPORTANCE_TRIALS:
                return _error(
                    400,
                    f"Importance fits a Gaussian process to every COMPLETE trial; {key[2]} is more than the "
                    f"dashboard fits ({MAX_IMPORTANCE_TRIALS}). Use lightning_hpo.importance() in Python instead.",
                )
            if key not in importance_cache:
                snapshot = await run_in_threadpool(StudySnapshot.load, storage, name, states=[TrialState.COMPLETE])
                scores = await run_in_threadpool(compute, snapshot, objective=objective)
                importance_cache[key] = {"scores": plain_mapping(scores), "n_complete": key[2]}
            return JSONResponse(importance_cache[key])
        except StudyNotFoundError as error:
            return _error(404, str(error))
        except (ValueError, LightningHPOError) as error:
            return _error(400, str(error))

    async def plotly_js(_: Request) -> Response:
        return FileResponse(_plotly_js(), media_type="text/javascript")

    routes = [
        Route("/", page),
        Route("/study", page),
        Route("/trial", page),
        Route("/api/studies", studies),
        Route("/api/study", study),
        Route("/api/trial", trial),
        Route("/api/importance", importance),
        Route("/static/plotly.min.js", plotly_js),
        Mount("/static", StaticFiles(directory=STATIC_DIR)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # Read every study once at start, so that opening a study page answers from memory.
        threading.Thread(target=feed.preload, daemon=True).start()
        yield

    hosts = allowed_hosts if allowed_hosts is not None else list(_LOCAL_HOSTS)
    app = Starlette(
        routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)], lifespan=lifespan
    )
    return _Guard(app, token)
