"""Orchestration around the flows: the Prefect tasks over batches (`ingest.py`, `publish.py`), how a run cuts its
inputs into batches (`batching.py`) and keeps its books (`books.py`), the worker pool the batches are processed in
(`pool.py`, `worker_preload.py`), stopping on signals (`stop.py`), the Prefect API servers a run or `newsetl serve`
starts (`prefect_server.py`), a served deployment's start, take-over and clean stop (`deployment.py`), the re-clean
(`reclean.py`) and the HTML report (`report.py`). Nothing here is pure text logic (that is `text/`) or SQL (that is
`warehouse/`).

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
