"""Prometheus metrics, one registry per app (no global state, so tests can build many apps)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from hxchat.domain import Usage

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.active_streams = Gauge(
            "hxchat_active_streams",
            "Event streams currently open to clients.",
            ["kind"],
            registry=self.registry,
        )
        self.running_generations = Gauge(
            "hxchat_running_generations",
            "Generations running in this process.",
            registry=self.registry,
        )
        self.generations = Counter(
            "hxchat_generations",
            "Generations by how they ended.",
            ["status"],
            registry=self.registry,
        )
        self.time_to_first_token = Histogram(
            "hxchat_time_to_first_token_seconds",
            "From the start of a generation to its first text.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.time_to_first_text = Histogram(
            "hxchat_time_to_first_text_seconds",
            "From the start of a generation to its first text, by model.",
            ["model"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.tokens = Counter(
            "hxchat_tokens",
            "Tokens of the answers as their models' providers reported them.",
            ["model", "direction"],
            registry=self.registry,
        )
        self.interrupted_swept = Counter(
            "hxchat_interrupted_generations_swept",
            "Generations found without a live worker and marked interrupted.",
            registry=self.registry,
        )
        self.password_checks = Counter(
            "hxchat_password_checks",
            "Passwords checked with argon2id (sign-ins, password changes), ~0.1 s of a core each.",
            registry=self.registry,
        )
        self.ratings = Gauge(
            "hxchat_answer_ratings",
            "Answers rated by their owners, by model and rating (from the database).",
            ["model", "rating"],
            registry=self.registry,
        )

    def first_text(self, model: str, seconds: float) -> None:
        """An answer of `model` gave its first text `seconds` after it started."""
        self.time_to_first_token.observe(seconds)
        self.time_to_first_text.labels(model=model).observe(seconds)

    def count_tokens(self, model: str, usage: Usage) -> None:
        """Count what an answer of `model` took (what was not reported is not counted)."""
        if usage.input_tokens is not None:
            self.tokens.labels(model=model, direction="input").inc(usage.input_tokens)
        if usage.output_tokens is not None:
            self.tokens.labels(model=model, direction="output").inc(usage.output_tokens)

    def set_ratings(self, counts: Iterable[tuple[str | None, str, int]]) -> None:
        """The ratings as the database counts them now: (model, rating, answers); an
        answer whose model was not recorded counts as `unknown`."""
        self.ratings.clear()
        for model, rating, answers in counts:
            self.ratings.labels(model=model or "unknown", rating=rating).set(answers)

    def render(self) -> bytes:
        return generate_latest(self.registry)
