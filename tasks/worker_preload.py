"""Imported once by the worker pool's fork server, so that every worker forked from it starts warm.

Importing this module loads what each worker would otherwise load for itself: the text core
(trafilatura, lxml, ftfy, dateparser), the language-id model (0.6 s to decompress), the word
frequencies, and the compiled default cleaning rules (0.3 s; `re` keeps them in its cache, so when a
worker unpickles the run's rules the patterns are found there instead of compiled again). Measured: a
spawned worker took ~1.4 s of CPU to be ready; a forked one inherits all of that from the fork server.

Nothing here may fail the fork server: a warm-up that raises only leaves the workers to warm up
themselves.
"""

from __future__ import annotations

import contextlib
import gc
import pickle
import signal
import sys
from types import TracebackType


def _cut_off_handoff(exc_type: type[BaseException], tb: TracebackType | None) -> bool:
    """A worker's start-up state ended short while the fork server's child unpickled it: the ingest that
    sent it stopped mid-send (Ctrl-C or SIGTERM to the whole process group while it started a worker)."""
    if not issubclass(exc_type, EOFError | pickle.UnpicklingError):
        return False
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "_main" and code.co_filename.endswith("spawn.py"):
            return True
        tb = tb.tb_next
    return False


def _quiet_when_cut_off(exc_type: type[BaseException], exc: BaseException,
                        tb: TracebackType | None) -> None:
    # The fork server's child reports an exception through sys.excepthook, which it inherits from this
    # module. A cut-off hand-off is the ingest's own interruption, which the ingest reports in one line;
    # a traceback from a worker that never started would only bury that line. Anything else is printed.
    if not _cut_off_handoff(exc_type, tb):
        sys.__excepthook__(exc_type, exc, tb)


sys.excepthook = _quiet_when_cut_off

# Ctrl-C in a terminal (and systemd's SIGTERM) reaches the whole process group, the fork server and the
# workers included. The ingest decides what stops and kills its workers itself; a worker interrupted on
# its own between its fork and its initializer (which ignores both too) would die mid-start, with a
# traceback and a broken pipe in the ingest that was starting it. The fork server reads its children's
# start-up handlers after this module is imported, so they start with both signals ignored.
# Set before the imports below, which take seconds on a busy machine: a Ctrl-C in them printed a
# KeyboardInterrupt traceback from the fork server under the ingest's one-line "interrupted".
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)

from newsetl.tasks.pool import warm_up  # noqa: E402 -- after the signals, see above
from newsetl.text.pipeline import ProcessConfig, make_context  # noqa: E402

with contextlib.suppress(Exception):
    warm_up(make_context(ProcessConfig()))

# What the warm-up loaded (the language model's 100k-entry tables, dateparser's locale tables, compiled
# rules: ~175 MB) is read by every worker and never freed. Frozen, the cyclic GC of a worker never walks
# it: a full collection writes to the header of every object it visits, and each page it writes to is
# copied into that worker (copy-on-write), so an unfrozen worker slowly duplicates the fork server.
# Measured (bench/bench_html.py): CPU 34.4-34.7 s a run instead of 35.2-36.5, PSS summed over the
# processes 1,185-1,205 MB instead of 1,204-1,227; the 20k re-scrape stream unchanged (461.5 docs/s).
# Collected first: the warm-up's own garbage cycles would otherwise be frozen into every worker for good.
gc.collect()
gc.freeze()
