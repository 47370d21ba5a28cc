"""Prometheus metrics: requests by route and status, latency, database pool."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "guichet_http_requests_total",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "guichet_http_request_duration_seconds",
    "HTTP request latency by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)

SHED = Counter(
    "guichet_http_requests_shed_total",
    "Requests answered 503 at once because the worker had too many in progress.",
    registry=REGISTRY,
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


class PoolCollector(Collector):
    """Reads the pool figures at scrape time from the database the running app holds."""

    def __init__(self) -> None:
        self.read_pool: Callable[[], dict[str, int]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.read_pool is None:
            return
        status = self.read_pool()
        for name, value in status.items():
            gauge = GaugeMetricFamily(f"guichet_db_pool_{name}", f"Database pool: {name}.")
            gauge.add_metric([], value)
            yield gauge


POOL = PoolCollector()
REGISTRY.register(POOL)
