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

from newsetl.tasks.pool import warm_up
from newsetl.text.pipeline import ProcessConfig, make_context

with contextlib.suppress(Exception):
    warm_up(make_context(ProcessConfig()))
