"""The scoring API: `create_app(settings)` builds the FastAPI app over a score folder and/or a model.

Every route but /health needs a bearer token; a token reads only its own local authorities, and
failed authentications are rate-limited per client address (an IPv6 client's /64). Each request (but
/health) leaves one line in the audit log before its response leaves; a request whose line cannot be
written gets 503.
Payload checks and scoring run in a worker thread, one request at a time, so /health stays fast.
"""

import asyncio
import ipaddress
import json
import logging
import math
import os
from contextlib import asynccontextmanager
from importlib.metadata import version as package_version
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from riskloop.artifacts.scores import MANIFEST_ADAPTER
from riskloop.experiments.served import LoadedModel, ModelError
from riskloop.serving.audit_log import AuditEntry, AuditError, AuditLog
from riskloop.serving.invocations import PayloadError, parse_payload, records
from riskloop.serving.ratelimit import RateLimiter, failure_key
from riskloop.serving.schemas import Health, ListPage, LiveModel, ModelInfo, Person, Predictions, ScoresModel
from riskloop.serving.scores import ScoreStore
from riskloop.serving.settings import ServeSettings
from riskloop.serving.tokens import ALL, Token, TokenStore

MAX_PAGE_SIZE = 500
#: The body of a request refused because its audit line could not be written.
NOT_AUDITED = json.dumps({"detail": "the audit log cannot be written: nothing is served until it can"}).encode()
logger = logging.getLogger("riskloop.serving")
INSECURE = Token("insecure-local", "", (ALL,), "")
INVOCATIONS_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["dataframe_split"],
                        "properties": {
                            "dataframe_split": {
                                "type": "object",
                                "required": ["columns", "data"],
                                "properties": {
                                    "columns": {"type": "array", "items": {"type": "string"}},
                                    "data": {"type": "array", "items": {"type": "array", "items": {}}},
                                },
                            },
                            "params": {"type": "object"},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["dataframe_records"],
                        "properties": {
                            "dataframe_records": {"type": "array", "items": {"type": "object"}},
                            "params": {"type": "object"},
                        },
                    },
                ]
            }
        }
    },
    "required": True,
}


class ServeError(ValueError):
    """A reason the server will not start, in one line."""


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _errors(*codes: int) -> dict:
    text = {
        401: "missing or invalid bearer token",
        403: "the token may not read this local authority",
        404: "not in the scores",
        413: "body or rows over the limit",
        415: "not application/json",
        422: "invalid input, with field-level errors",
        429: "rate limit: see Retry-After",
        503: "no scores or no model loaded, the audit log cannot be written, or the scoring queue is full "
        "(see Retry-After)",
    }
    return {code: {"description": text[code]} for code in codes}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 as soon as its declared or streamed size passes `limit`."""
    too_large = HTTPException(413, f"the body is over the limit of {limit:,} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


class AuditMiddleware:
    """Gives each request an AuditEntry (request.state.audit) and writes its line, with the status, as the
    response starts: a line that cannot be written turns the response into a 503 without its body."""

    def __init__(self, app, log: AuditLog):
        self.app, self.log = app, log

    def _record(self, scope, entry: AuditEntry, status: int) -> bool:
        route = scope.get("route")
        if route is not None:
            entry.endpoint = route.path
        try:
            self.log.write(entry, status)
        except AuditError as exc:
            logger.error("%s: request refused with 503", exc)
            return False
        return True

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] == "/health":
            return await self.app(scope, receive, send)
        client = scope.get("client")
        entry = AuditEntry(method=scope["method"], client=client[0] if client else None)
        scope.setdefault("state", {})["audit"] = entry
        started = refused = False

        async def audited_send(message):
            nonlocal started, refused
            if message["type"] == "http.response.start":
                started = True
                refused = not self._record(scope, entry, message["status"])
                if refused:
                    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(NOT_AUDITED))]
                    await send({"type": "http.response.start", "status": 503, "headers": headers})
                    await send({"type": "http.response.body", "body": NOT_AUDITED})
            if not refused:
                await send(message)

        try:
            await self.app(scope, receive, audited_send)
        finally:
            if not started:  # an exception: the server's 500 follows
                self._record(scope, entry, 500)


def invoke(model: LoadedModel, raw: bytes, max_rows: int) -> tuple[int, int, bytes]:
    """(status, rows scored, JSON body) of a POST /invocations body: parsed, checked, scored and encoded,
    all off the event loop."""
    try:
        frame, params = parse_payload(raw, model.columns, max_rows)
        scored = model.predict(frame, params)
    except PayloadError as exc:
        return exc.status, 0, json.dumps({"detail": exc.errors}).encode()
    except ModelError as exc:
        detail = [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]
        return 422, 0, json.dumps({"detail": detail}).encode()
    return 200, len(scored), json.dumps({"predictions": records(scored)}, allow_nan=False).encode()


def create_app(settings: ServeSettings) -> FastAPI:
    """The app over `settings.scores` and/or `settings.model_uri`, its audit log open and its start line
    written (`app.state.audit_log`); ServeError if it must not start."""
    if settings.insecure_local and not is_loopback(settings.host):
        raise ServeError(f"--insecure-local serves without tokens and binds to loopback only, not {settings.host}")
    store = None if settings.insecure_local else TokenStore(settings.tokens)
    if store is not None and not store.tokens:
        raise ServeError(
            f"no tokens in {settings.tokens}: create one with `riskloop token create --name NAME "
            "--scope LA|all`, or start with --insecure-local (loopback, no auth)"
        )
    scores = ScoreStore.load(settings.scores) if settings.scores else None
    model = LoadedModel.load(settings.model_uri) if settings.model_uri else None
    limiter = RateLimiter(settings.rate, settings.burst)
    failures = RateLimiter(settings.failed_auth_rate, settings.failed_auth_burst)
    scoring = asyncio.Semaphore(settings.scoring_slots)
    admitted = 0  # POST /invocations holding their bodies in memory, scored or waiting for a slot
    bearer = HTTPBearer(auto_error=False, description="a token from `riskloop token create`")
    try:
        audit = AuditLog.open(
            settings.audit_log,
            {
                "pid": os.getpid(),
                "version": package_version("riskloop"),
                "scores": None if scores is None else str(scores.manifest.model.version),
                "model": None if model is None else model.label,
                "insecure_local": settings.insecure_local,
            },
        )
    except AuditError as exc:
        raise ServeError(f"{exc}; the server does not start without its audit log") from exc

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        audit.close()

    app = FastAPI(
        title="riskloop scoring API",
        version=package_version("riskloop"),
        lifespan=lifespan,
        description="Advisory risk scores for community safety partnerships: the batch scores of "
        "`riskloop score` and live scoring with the model, behind bearer tokens.",
    )
    app.add_middleware(AuditMiddleware, log=audit)
    app.state.audit_log = audit

    async def principal(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Token:
        """The token's record (401 if missing or unknown; 429 once an address, or an IPv6 /64, has failed
        too often), after its rate limit (429)."""
        token: Token | None
        entry = request.state.audit
        if store is None:
            token = INSECURE
        else:
            address = failure_key(entry.client or "unknown")
            wait = failures.blocked(address)
            if wait is not None:
                raise HTTPException(
                    429, "too many failed authentications from this address", {"Retry-After": str(wait)}
                )
            token = store.authenticate(credentials.credentials) if credentials else None
            if token is None:
                failures.acquire(address)
                raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})
        entry.token = token.name
        wait = limiter.acquire(token.name)
        if wait is not None:
            raise HTTPException(429, "too many requests for this token", {"Retry-After": str(wait)})
        return token

    Principal = Annotated[Token, Depends(principal)]

    def need_scores() -> ScoreStore:
        if scores is None:
            raise HTTPException(503, "no scores loaded (start the server with --scores)")
        return scores

    @app.get("/health", response_model=Health, tags=["service"])
    async def health() -> Health:
        """Liveness, without auth."""
        return Health(
            status="ok", model_loaded=model is not None, scores_as_of=scores.manifest.as_of if scores else None
        )

    @app.get("/people/{pseudonym}", response_model=Person, tags=["scores"], responses=_errors(401, 403, 404, 429, 503))
    async def person(pseudonym: str, token: Principal, request: Request) -> dict:
        """One person's row of the batch scores. A token with local-authority scopes gets 403 for any pseudonym
        outside them, scored elsewhere or not at all: the answer does not tell which."""
        entry = request.state.audit
        entry.pseudonyms.append(pseudonym)
        row = need_scores().person(pseudonym)
        if row is not None and token.may_read(row["local_authority"]):
            entry.model_version = row["model_version"]
            return row
        if ALL in token.scopes:
            raise HTTPException(404, "no such pseudonym in the scores")
        raise HTTPException(403, "not in the scores of this token's local authorities")

    @app.get(
        "/lists/{local_authority}", response_model=ListPage, tags=["scores"], responses=_errors(401, 403, 404, 429, 503)
    )
    async def prioritisation_list(
        local_authority: str,
        token: Principal,
        request: Request,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    ) -> dict:
        """A local authority's listed people in rank order, a page at a time."""
        entry = request.state.audit
        entry.local_authority = local_authority
        batch = need_scores()
        if not token.may_read(local_authority):
            raise HTTPException(403, "this token may not read that local authority")
        if local_authority not in batch.local_authorities:
            raise HTTPException(404, "no such local authority in the scores")
        positions = batch.listed(local_authority)
        people = [batch.row(p) for p in positions[(page - 1) * page_size : page * page_size]]
        entry.pseudonyms = [p["person_id"] for p in people]
        entry.model_version = str(batch.manifest.model.version)
        return {
            "local_authority": local_authority,
            "total": len(positions),
            "page": page,
            "page_size": page_size,
            "pages": math.ceil(len(positions) / page_size),
            "people": people,
        }

    @app.post(
        "/invocations",
        response_model=Predictions,
        tags=["scoring"],
        openapi_extra={"requestBody": INVOCATIONS_BODY},
        responses=_errors(401, 413, 415, 422, 429, 503),
    )
    async def invocations(token: Principal, request: Request):
        """Score feature rows with the model (MLflow scoring-server protocol), with three reasons each; 503
        (see Retry-After), the body unread, while the queue for scoring is full."""
        nonlocal admitted
        if model is None:
            raise HTTPException(503, "no model loaded (start the server with --model)")
        entry = request.state.audit
        entry.model_version = model.label
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise HTTPException(415, "send the rows as application/json")
        if admitted >= settings.scoring_slots + settings.scoring_queue:
            raise HTTPException(503, "the scoring queue is full: retry later", {"Retry-After": "1"})
        admitted += 1
        try:
            raw = await read_body(request, settings.max_body_bytes)
            async with scoring:
                status, rows, body = await run_in_threadpool(invoke, model, raw, settings.max_rows)
        finally:
            admitted -= 1
        entry.rows = rows
        return Response(body, status_code=status, media_type="application/json")

    @app.get("/model", response_model=ModelInfo, tags=["service"], responses=_errors(401, 429))
    async def model_info(token: Principal) -> ModelInfo:
        """The model behind the batch scores (manifest.json) and the one behind /invocations."""
        batch = None
        if scores is not None:
            manifest = MANIFEST_ADAPTER.dump_python(scores.manifest, mode="json")
            batch = ScoresModel.model_validate(
                {
                    **{k: str(manifest["model"][k]) for k in ("name", "version", "run_id", "uri")},
                    "data_fingerprint": manifest["data"]["fingerprint"],
                    **{k: manifest[k] for k in ("as_of", "riskloop_version", "contract", "counts")},
                }
            )
        live = (
            None
            if model is None
            else LiveModel(
                uri=model.uri, name=model.name, version=model.version, run_id=model.run_id, metrics=model.metrics
            )
        )
        return ModelInfo(scores=batch, live=live)

    return app
