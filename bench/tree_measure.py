"""`../shared/bench/measure.py`, counting every process a command starts, not only its session's.

The shared sampler sums the processes of the command's session. A process that starts its own session
escapes it: `newsetl ingest`'s temporary Prefect API server does (so that a terminal's Ctrl-C reaches the
ingest, which then stops the server itself), and it is ~250 MB and some CPU of every run. Here the
sampler counts the session and every descendant of the command, wherever its session is.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

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


def load_measure() -> ModuleType:
    """The shared measure module, its `session_procs` widened to the command's whole process tree."""
    spec = importlib.util.spec_from_file_location("shared_measure", SHARED / "bench" / "measure.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    by_session = mod.session_procs

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
        return out

    mod.session_procs = tree_procs  # type: ignore[attr-defined]  # the shared module, loaded at run time
    return mod


if __name__ == "__main__":
    # The shared script's command line, with the wider count: `python bench/tree_measure.py --label ... -- CMD`.
    load_measure().main()
