"""hxchat's own exceptions, one small tree.

Adapters (store, event log, providers) turn library errors into these; one set of
handlers in `web.handlers` decides what a response looks like: JSON `{"detail": ...}`
under `/api/`, an HTML error page elsewhere. Every `detail` is one readable sentence.

The tree, with the HTTP status of each branch:

    HxchatError                  500
        ConfigError
        NotFound                 404
        CrossSiteRequest         403
        MessageTooLong           413
            BodyTooLarge
        InvalidMessage           422
        FileRefused              413, 415 or 422
        Busy                     409
        NothingToRetry           422
        TooManyRequests          429
        ServiceUnavailable       503
            StoreUnavailable
            BrokerUnavailable
                AppendUncertain
        SchemaOutOfDate
        AnswerTooLong
        ProviderError            502
            ProviderUnavailable
            ProviderTimeout
"""

from __future__ import annotations


class HxchatError(Exception):
    """Base of everything hxchat raises on purpose."""

    status_code = 500
    default_detail = "Something went wrong on the server."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)


class ConfigError(HxchatError):
    """A setting is wrong; `hxchat serve` prints this one line and exits."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        super().__init__(f"{variable}: {problem}")


# -- request errors ------------------------------------------------------------------


class NotFound(HxchatError):
    status_code = 404
    default_detail = "There is no such conversation."


class CrossSiteRequest(HxchatError):
    status_code = 403
    default_detail = "This request came from another site and was refused."


class MessageTooLong(HxchatError):
    status_code = 413
    default_detail = "The message is too long."


class BodyTooLarge(MessageTooLong):
    """The request body is over the limit; refused before it is read whole."""

    default_detail = "The request is too large."


class InvalidMessage(HxchatError):
    status_code = 422
    default_detail = "The message is empty."


class FileRefused(HxchatError):
    """An uploaded file hxchat will not keep: too large or too many (413), of a kind it
    cannot read (415), damaged, encrypted or empty (422)."""

    status_code = 422
    default_detail = "hxchat cannot read this file."

    def __init__(self, detail: str, status_code: int = 422) -> None:
        super().__init__(detail)
        self.status_code = status_code


class UnknownModel(HxchatError):
    """A message, an edit or a regeneration named a model that is not offered."""

    status_code = 422
    default_detail = "Unknown model."

    def __init__(self, model: str) -> None:
        super().__init__(f"Unknown model: {model}.")


class Busy(HxchatError):
    status_code = 409
    default_detail = (
        "An answer is still being written in this conversation; wait for it or stop it."
    )


class NothingToRetry(HxchatError):
    status_code = 422
    default_detail = "There is no answer to retry in this conversation."


class TooManyRequests(HxchatError):
    """A limit of the owner or of sign-ins; `retry_after` is the wait in seconds."""

    status_code = 429
    default_detail = "Too many requests; please try again in a moment."

    def __init__(self, detail: str | None = None, retry_after: int = 60) -> None:
        self.retry_after = retry_after
        super().__init__(detail)


# -- dependencies --------------------------------------------------------------------


class ServiceUnavailable(HxchatError):
    status_code = 503
    default_detail = "The service is unavailable right now; please try again in a moment."


class StoreUnavailable(ServiceUnavailable):
    default_detail = "The database cannot be reached right now; please try again in a moment."


class BrokerUnavailable(ServiceUnavailable):
    default_detail = "The event broker cannot be reached right now; please try again in a moment."


class AppendUncertain(BrokerUnavailable):
    """The broker went away while an event was being appended: it may be in the log
    or not. The log sends it again before the generation's next event (exactly once),
    so the caller counts it as written."""


class SchemaOutOfDate(HxchatError):
    """The database schema is behind this version of hxchat."""

    default_detail = "The database schema is out of date: run `hxchat db upgrade`."


# -- answers -------------------------------------------------------------------------


class AnswerTooLong(HxchatError):
    """The model wrote more than an answer may hold; the answer ends as an error."""

    default_detail = "The answer was cut off because it grew too long."


# -- models --------------------------------------------------------------------------


class ProviderError(HxchatError):
    """The model failed; `detail` says, for a person, what happened and what to try."""

    status_code = 502
    default_detail = "The model did not answer."


class ProviderUnavailable(ProviderError):
    """The endpoint could not be reached; the user may retry."""

    default_detail = "The model's server could not be reached; please try again."


class ProviderTimeout(ProviderError):
    """The model stopped sending text for longer than the configured timeout."""

    default_detail = "The model took too long to answer; please try again."
