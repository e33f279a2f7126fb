"""The project lead's numbers: reads behind the dashboard endpoints (queue state and burn-down,
annotator throughput, review load). Each is a handful of aggregate queries, never a loop over
a project's rows, and runs on PostgreSQL and on the embedded SQLite default."""

from annotations.dashboards.queue import queue_dashboard
from annotations.dashboards.review import review_dashboard
from annotations.dashboards.throughput import MAX_DAYS, throughput_dashboard

__all__ = ["MAX_DAYS", "queue_dashboard", "review_dashboard", "throughput_dashboard"]
