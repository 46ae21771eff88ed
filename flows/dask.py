"""Running the ingest flow on a Dask cluster: the documented way from one machine to many.

`process_batch` is the only task the flow submits; with a Dask task runner its runs go to the Dask
workers, which then do the CPU-bound stages (extract, repair, clean, sign) in parallel, while the
flow's process stays the single writer of the warehouse. Pass `address` to use an existing cluster
(`dask scheduler` / `dask worker` on other machines, with this package installed on each); without
it a local cluster is started. Worker processes need the Prefect API of the flow run: point
PREFECT_API_URL at a real server when the workers are other processes or machines.
"""

from __future__ import annotations

from typing import Any

from newsetl.flows.ingest import ingest


def ingest_on_dask(
    sources: list[str], db: str | None = None, *, address: str | None = None, n_workers: int = 2,
    processes: bool = True, **params: Any,
) -> dict[str, Any]:
    from prefect_dask import DaskTaskRunner  # the [dask] extra

    if address:
        runner = DaskTaskRunner(address=address)
    else:
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": n_workers, "threads_per_worker": 1,
                                                "processes": processes, "dashboard_address": None})
    # workers=0: Dask provides the parallelism; a process pool inside each Dask worker would
    # oversubscribe the cores.
    params.setdefault("workers", 0)
    # prefect-dask's runner is a TaskRunner of its own future type, which Prefect's annotation does not name.
    return ingest.with_options(task_runner=runner)(sources=sources, db=db, **params)  # type: ignore[arg-type]
