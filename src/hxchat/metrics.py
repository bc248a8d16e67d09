"""Prometheus metrics, one registry per app (no global state, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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

    def render(self) -> bytes:
        return generate_latest(self.registry)
