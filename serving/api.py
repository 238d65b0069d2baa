"""The scoring API: `create_app(settings)` builds the FastAPI app over a score folder and/or a model.

Every route but /health needs a bearer token; a token reads only its own local authorities.
Each request (but /health) leaves one line in the audit log.
"""

import ipaddress
import math
from contextlib import asynccontextmanager
from importlib.metadata import version as package_version
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from riskloop.artifacts.scores import MANIFEST_ADAPTER
from riskloop.experiments.served import LoadedModel, ModelError
from riskloop.serving.audit_log import AuditEntry, AuditLog
from riskloop.serving.invocations import PayloadError, parse_payload, records
from riskloop.serving.ratelimit import RateLimiter
from riskloop.serving.schemas import Health, ListPage, LiveModel, ModelInfo, Person, Predictions, ScoresModel
from riskloop.serving.scores import ScoreStore
from riskloop.serving.settings import ServeSettings
from riskloop.serving.tokens import ALL, Token, TokenStore, load_tokens

MAX_PAGE_SIZE = 500
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
        503: "no scores or no model loaded",
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
    """Gives each request an AuditEntry (request.state.audit) and logs it with the response status."""

    def __init__(self, app, log: AuditLog):
        self.app, self.log = app, log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] == "/health":
            return await self.app(scope, receive, send)
        entry = AuditEntry(method=scope["method"])
        scope.setdefault("state", {})["audit"] = entry
        status = 500

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            if route is not None:
                entry.endpoint = route.path
            self.log.write(entry, status)


def create_app(settings: ServeSettings) -> FastAPI:
    """The app over `settings.scores` and/or `settings.model_uri`; ServeError if it must not start."""
    tokens = [] if settings.insecure_local else load_tokens(settings.tokens)
    if settings.insecure_local and not is_loopback(settings.host):
        raise ServeError(f"--insecure-local serves without tokens and binds to loopback only, not {settings.host}")
    if not tokens and not settings.insecure_local:
        raise ServeError(
            f"no tokens in {settings.tokens}: create one with `riskloop token create --name NAME "
            "--scope LA|all`, or start with --insecure-local (loopback, no auth)"
        )
    scores = ScoreStore.load(settings.scores) if settings.scores else None
    model = LoadedModel.load(settings.model_uri) if settings.model_uri else None
    store = TokenStore(tokens)
    limiter = RateLimiter(settings.rate, settings.burst)
    audit = AuditLog(settings.audit_log)
    bearer = HTTPBearer(auto_error=False, description="a token from `riskloop token create`")

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

    async def principal(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Token:
        """The token's record (401 if missing or unknown), after its rate limit (429)."""
        token: Token | None
        if settings.insecure_local:
            token = INSECURE
        else:
            token = store.authenticate(credentials.credentials) if credentials else None
            if token is None:
                raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})
        request.state.audit.token = token.name
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
        """One person's row of the batch scores."""
        entry = request.state.audit
        entry.pseudonyms.append(pseudonym)
        row = need_scores().person(pseudonym)
        if row is None:
            raise HTTPException(404, "no such pseudonym in the scores")
        entry.model_version = row["model_version"]
        if not token.may_read(row["local_authority"]):
            raise HTTPException(403, "this token may not read that person's local authority")
        return row

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
        """Score feature rows with the model (MLflow scoring-server protocol), with three reasons each."""
        if model is None:
            raise HTTPException(503, "no model loaded (start the server with --model)")
        entry = request.state.audit
        entry.model_version = model.label
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise HTTPException(415, "send the rows as application/json")
        try:
            frame, params = parse_payload(
                await read_body(request, settings.max_body_bytes), model.columns, settings.max_rows
            )
        except PayloadError as exc:
            return JSONResponse({"detail": exc.errors}, status_code=exc.status)
        try:
            scored = await run_in_threadpool(model.predict, frame, params)
        except ModelError as exc:
            return JSONResponse(
                {"detail": [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]}, status_code=422
            )
        entry.rows = len(scored)
        return {"predictions": records(scored)}

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
