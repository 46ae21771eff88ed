"""The run's books (tasks/books.py): what a run that cannot record its own end leaves behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prefect import flow

from newsetl.tasks import books
from newsetl.warehouse.connect import WRITE_WAIT_ENV, WarehouseBusy, migrate, writer


def test_a_failure_the_busy_warehouse_cannot_record_names_each_wait_once(
        tmp_path: Path, prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that gave up on a busy warehouse (after its --wait, 5 s) cannot record that either (one more
    attempt: its --wait was the whole wait). The report said "gave up after 10 s (--wait SECONDS to wait
    longer)" in its header and "gave up after 5 s" in its reason: two answers to one question (a user
    trial). A failure of another kind waits RECORD_WAIT_SECONDS to be recorded, never more than --wait."""
    db = tmp_path / "w.duckdb"
    with writer(db) as con:
        migrate(con)
    monkeypatch.setattr(books, "RECORD_WAIT_SECONDS", 0.5)
    monkeypatch.delenv(WRITE_WAIT_ENV, raising=False)  # the default --wait, 60 s
    hold = textwrap.dedent(f"""
        import duckdb, time
        con = duckdb.connect({str(db)!r})
        print("holding", flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"

        @flow
        def gave_up() -> None:
            books.record_failure(str(db), "run-1", books.RunTally(),
                                 WarehouseBusy(f"{db} is busy: pid 1; gave up after 5 s (--wait SECONDS to wait "
                                               "longer)"))
            books.record_failure(str(db), "run-2", books.RunTally(), RuntimeError("a bug"))
            monkeypatch.setenv(WRITE_WAIT_ENV, "0.2")
            books.record_failure(str(db), "run-3", books.RunTally(), RuntimeError("a bug"))

        gave_up()
    finally:
        holder.kill()
        holder.wait()
    header, *rest = (books.report_dir(str(db)) / "run-1.md").read_text(encoding="utf-8").splitlines()
    # One attempt: the run's --wait, spent on that holder, was the whole wait (RECORD_WAIT_SECONDS is for
    # the record of a failure of another kind).
    assert header == ("# newsetl ingest run `run-1`: failed (not recorded in the warehouse: the warehouse was "
                      "still busy; the next run marks the row crashed)")
    (reason,) = [line for line in rest if line.startswith("Reason:")]
    assert "gave up after 5 s" in reason
    for run, wait in (("run-2", "0.5"), ("run-3", "0.2")):
        header = (books.report_dir(str(db)) / f"{run}.md").read_text(encoding="utf-8").splitlines()[0]
        assert f"(not recorded in the warehouse: the warehouse was still busy {wait} s later;" in header, header


def _story(name: str, key: str) -> str:
    import json

    data = json.loads((Path(__file__).resolve().parents[1] / "data" / name).read_text(encoding="utf-8"))
    return str(data[key])


# Per earlier scheme version: a story whose signature it made otherwise (Chinese under 2, Thai under 3), and
# the patterns that restore its words: runs of word characters.
_OLD_SCHEMES = {2: (("cjk_stories.json", "zh"), ("_SPACELESS", "_SEGMENTED")),
                3: (("sea_stories.json", "th"), ("_SEGMENTED",))}


def _old_scheme_warehouse(db: Path, monkeypatch: pytest.MonkeyPatch, version: int) -> str:
    """A warehouse as scheme `version` left it, with one article signed by it; returns the article's body."""
    import re

    import pyarrow as pa

    from newsetl.text import sign
    from newsetl.text.lsh import DedupConfig
    from newsetl.warehouse.dedup import cluster_batch

    story, patterns = _OLD_SCHEMES[version]
    body = _story(*story)
    cfg = DedupConfig()
    with writer(db) as con, monkeypatch.context() as patch:
        migrate(con)
        for name in patterns:
            patch.setattr(sign, name, re.compile(r"(?!)"))
        sigs = sign.sign_texts([body], cfg.sign)
        h = str(sigs.body_hash[0])
        con.execute("INSERT INTO articles (article_id, doc_id, source_uri, body, body_hash, word_count, "
                    "content_type, run_id) VALUES ('a', 'a', '/in/a.txt', ?, ?, 400, 'text', 'r0')",
                    [body, h]).fetchall()
        no_date = pa.array([None], pa.timestamp("us", "UTC"))
        batch = pa.table({"article_id": ["a"], "body_hash": [h], "published_at": no_date, "fetched_at": no_date})
        con.execute("BEGIN TRANSACTION")
        cluster_batch(con, batch, sigs, cfg, "r0")
        con.execute("COMMIT")
        con.execute("UPDATE dedup_meta SET value = ? WHERE key = 'scheme_id'",
                    [sign.scheme_id(cfg.sign, version=version)])
    return body


@pytest.mark.parametrize("version", [2, 3])
def test_a_run_upgrades_a_warehouse_of_an_earlier_scheme_at_its_start_all_or_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int) -> None:
    from newsetl.text import sign
    from newsetl.text.learned import LearnedConfig
    from newsetl.text.lsh import DedupConfig
    from newsetl.warehouse import dedup

    db = tmp_path / "w.duckdb"
    body = _old_scheme_warehouse(db, monkeypatch, version)

    def state() -> list[tuple[object, ...]]:
        with writer(db) as con:
            return con.execute("SELECT (SELECT value FROM dedup_meta), s.n_shingles, s.banded, s.body_hash, "
                               "a.body_hash, (SELECT count(*) FROM lsh_bands) FROM signatures s "
                               "JOIN articles a USING (article_id)").fetchall()

    before = state()
    fresh = sign.sign_texts([body], DedupConfig().sign)
    assert before[0][0] == sign.scheme_id(DedupConfig().sign, version=version)
    assert before[0][3] != fresh.body_hash[0]
    if version == 2:
        assert before[0][5] == 0  # the Chinese story was too short to be banded

    def fail(con: object, table: str, *args: object) -> None:
        raise RuntimeError("injected: the upgrade stops half-way")

    # Fails at the upgrade's very end, after it rewrote the signature, the article's hash and the band rows:
    # nothing of it stays.
    with monkeypatch.context() as patch:
        patch.setattr(dedup, "unregister", fail)
        with pytest.raises(RuntimeError, match="injected"):
            books.begin_run(str(db), "r1", "f1", {}, [], DedupConfig(), LearnedConfig())
    assert state() == before

    books.begin_run(str(db), "r2", "f2", {}, [], DedupConfig(), LearnedConfig())
    (scheme, n_shingles, banded, sig_hash, article_hash, bands), = state()
    assert scheme == sign.scheme_id(DedupConfig().sign)
    assert (n_shingles, banded, sig_hash, article_hash, bands) == \
        (int(fresh.n_shingles[0]), True, fresh.body_hash[0], fresh.body_hash[0], DedupConfig().sign.bands)


def test_a_run_report_the_disk_has_no_room_for_is_not_left_empty(tmp_path: Path) -> None:
    """`write_text` on a full disk left the run report file empty: a run that seemed to have nothing to say,
    rather than one whose report could not be written (a user trial). Written beside and renamed, it is
    whole or absent. In a child process whose files cannot grow past 1 KB (RLIMIT_FSIZE, as a full disk)."""
    db = tmp_path / "w.duckdb"
    script = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
        from newsetl.tasks.books import write_report_file
        print(write_report_file({str(db)!r}, "run-1", "# a run report\\n" + "x" * 4096))
        print(write_report_file({str(db)!r}, "run-2", "# a short one\\n"))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    folder = books.report_dir(str(db))
    assert proc.stdout.split() == ["None", str(folder / "run-2.md")], proc.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["run-2.md"]
    assert (folder / "run-2.md").read_text(encoding="utf-8") == "# a short one\n"
