"""make_context in a process that will not process documents (an ingest with worker processes) does not
load the language model (~1 s, 70 MB of the ingest's memory): the worker pool checks at its start that
its workers could (tests/tasks/test_pool.py). Where documents are processed, it is loaded at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import sys
import py3langid.langid as L
from newsetl.text.pipeline import ProcessConfig, make_context
if sys.argv[1] == "broken":
    L.MODEL_FILE = "no-such-model.npz.xz"
make_context(ProcessConfig(), processes_here=sys.argv[1] in ("here", "broken"))
print("kept" if L.IDENTIFIER is not None else "released")
"""


@pytest.mark.parametrize(("mode", "said"), [("here", "kept"), ("elsewhere", "released")])
def test_the_language_model_is_kept_only_where_documents_are_processed(mode: str, said: str) -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=120,
                          check=True)
    assert done.stdout.split() == [said]


def test_a_model_that_does_not_load_fails_at_start_up_where_documents_are_processed() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE, "broken"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "no-such-model" in done.stderr
