"""`../shared/bench/measure.py`, counting every process a command starts, not only its session's.

The shared sampler sums the processes of the command's session. A process that starts its own session
escapes it: `newsetl ingest`'s temporary Prefect API server does (so that a terminal's Ctrl-C reaches the
ingest, which then stops the server itself), and it is ~250 MB and some CPU of every run. Here the
sampler counts the session and every descendant of the command, wherever its session is.

Each run's result also carries `peak_pss_sum_mb`: the peak of the summed proportional set size (PSS) of
the same processes. The RSS sum counts a page shared by N processes N times (the workers' fork server
and each worker share the warm text core, ~250 MB); PSS counts a shared page once over all of them, so
the PSS sum is the memory the run takes from the machine. It is sampled every 0.5 s (RSS every 50 ms), so
a short peak can fall between two samples.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _parents() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every process."""
    out: dict[int, tuple[int, int]] = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                st = f.read()
            fields = st[st.rindex(b")") + 2:].split()
            out[int(p)] = (int(fields[1]), int(fields[3]))
        except (OSError, ValueError, IndexError):
            continue
    return out


PSS_EVERY = 10  # samples (the shared sampler's are 50 ms apart): PSS every 0.5 s


def _pss_kb(pid: int) -> int:
    """The process's proportional set size in kB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def load_measure() -> ModuleType:
    """The shared measure module, its `session_procs` widened to the command's whole process tree."""
    spec = importlib.util.spec_from_file_location("shared_measure", SHARED / "bench" / "measure.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    by_session = mod.session_procs
    peak = {"pss_kb": 0, "samples": 0}  # of the run being measured

    def tree_procs(sid: int) -> dict[int, tuple[int, float]]:
        parents = _parents()
        members = {pid for pid, (_, s) in parents.items() if s == sid}
        # Descendants of the session's processes, in sessions of their own (fixed point: a few levels).
        grew = True
        while grew:
            extra = {pid for pid, (ppid, _) in parents.items() if ppid in members and pid not in members}
            members |= extra
            grew = bool(extra)
        out = by_session(sid)
        for sess in {parents[pid][1] for pid in members if pid in parents} - {sid}:
            out.update({pid: v for pid, v in by_session(sess).items() if pid in members})
        # PSS every PSS_EVERY-th sample: reading smaps_rollup walks each process's mappings, ~10 ms per
        # sample over an ingest's processes; at every 50-ms sample it took a fifth of a core from the
        # command being measured.
        peak["samples"] += 1
        if peak["samples"] % PSS_EVERY == 1:
            peak["pss_kb"] = max(peak["pss_kb"], sum(map(_pss_kb, out)))
        return out

    run_once = mod.run_once

    def run_once_with_pss(cmd: list[str], log: str) -> dict[str, Any]:
        peak["pss_kb"] = peak["samples"] = 0
        result: dict[str, Any] = run_once(cmd, log)
        result["peak_pss_sum_mb"] = round(peak["pss_kb"] / 1024, 1)
        return result

    mod.session_procs = tree_procs  # type: ignore[attr-defined]  # the shared module, loaded at run time
    mod.run_once = run_once_with_pss  # type: ignore[attr-defined]
    return mod


if __name__ == "__main__":
    # The shared script's command line, with the wider count: `python bench/tree_measure.py --label ... -- CMD`.
    load_measure().main()
