"""Logging set-up for `hxchat serve`: uvicorn's format, plus our own logger.

Libraries may log tracebacks with request details when a model call fails (Google
ADK does, for every failed turn). hxchat reports those failures itself, in one line
without secrets, so records from other libraries reach the log without their traceback.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

OWN_LOGGERS = ("hxchat", "uvicorn")


class DropForeignTracebacks(logging.Filter):
    """Keep the message of a third-party record, drop its traceback and stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(OWN_LOGGERS):
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True


def log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's logging configuration with hxchat's logger and the filter added."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["foreign_tracebacks"] = {"()": DropForeignTracebacks}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("foreign_tracebacks")
    config["loggers"]["hxchat"] = {"handlers": ["default"], "level": level, "propagate": False}
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config
