"""One place decides what an error looks like.

Under `/api/`: JSON `{"detail": "<one sentence>"}` (also for validation errors, whose
pydantic list becomes a sentence). htmx requests get a small fragment retargeted to
the composer's error line. Pages get an HTML error page of the same status.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import escape
from starlette.exceptions import HTTPException as StarletteHTTPException

from hxchat.errors import HxchatError, TooManyRequests

logger = logging.getLogger(__name__)

_STATUS_SENTENCES = {
    400: "The request could not be understood.",
    403: "This request was refused.",
    404: "There is no such page.",
    405: "This method is not allowed here.",
    401: "Sign in first.",
    413: "The request is too large.",
    422: "The request is malformed.",
    429: "Too many requests; please try again in a moment.",
    500: "Something went wrong on the server.",
    503: "The service is unavailable right now; please try again in a moment.",
}


def _validation_sentence(errors: list[Any]) -> str:
    for error in errors:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        if error.get("type") == "missing":
            return f"The field {loc[-1]!r} is required." if loc else "The request body is missing."
        if error.get("type") == "json_invalid":
            return "The request body is not valid JSON."
        if loc:
            msg = str(error.get("msg", "is invalid")).rstrip(".")
            return f"The field {loc[-1]!r} is invalid: {msg}."
    return "The request is malformed."


def error_response(request: Request, status: int, detail: str) -> Response:
    headers: dict[str, str] = {}
    if request.url.path.startswith("/api/") or request.url.path in ("/healthz", "/metrics"):
        return JSONResponse({"detail": detail}, status_code=status)
    if request.headers.get("hx-request") == "true":
        headers = {"HX-Retarget": "#composer-error", "HX-Reswap": "innerHTML"}
        return HTMLResponse(str(escape(detail)), status_code=status, headers=headers)
    templates = request.app.state.templates
    identity = getattr(request.state, "identity", None)  # modes with accounts
    body = templates.page(
        "error.html", status=status, detail=detail, title=f"{status}", identity=identity
    )
    return HTMLResponse(body, status_code=status)


def install(app: FastAPI) -> None:
    async def hxchat_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HxchatError)
        if exc.status_code >= 500:
            logger.warning("%s %s: %s", request.method, request.url.path, exc.detail)
        response = error_response(request, exc.status_code, exc.detail)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail else None
        if detail in (None, "Not Found", "Method Not Allowed"):
            detail = _STATUS_SENTENCES.get(exc.status_code, "The request failed.")
        response = error_response(request, exc.status_code, detail or "The request failed.")
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, 422, _validation_sentence(list(exc.errors())))

    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, _STATUS_SENTENCES[500])

    app.add_exception_handler(HxchatError, hxchat_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
