"""Prefect tasks over batches, and the worker pool they run in.

Kept import-light on purpose: `newsetl ingest` reads the two names below before Prefect or the text core
is imported (it starts the worker pool's fork server first, so the workers warm up while Prefect starts).
"""

from __future__ import annotations

import os

# The module the worker pool's fork server preloads: it imports and warms up the text core once.
WORKER_PRELOAD = "newsetl.tasks.worker_preload"


def usable_cores() -> int:
    """Cores this process may run on (a container's or taskset's limit), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
