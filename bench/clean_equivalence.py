"""Equivalence check: this checkout's cleaner against a reference revision's (default `main`), exactly.

Every text of the corpora below is cleaned by both in three modes — rules alone with the page's title,
rules + the learned line model, and the learned-only pass with a learned key set — and the bodies and
removal records (category, rule id, text, offset) must be identical. The batch API (`clean_batch`,
when this checkout has it) is checked against the reference's one-text-at-a-time `clean_text` too.

  python bench/clean_equivalence.py [--ref main] [--limit N]

Corpora: ../shared/eval/aeb-dev/text, ../shared/eval/traf-dev/text, ../shared/eval/dedup-dev/docs.jsonl,
../shared/seeds and bench_clean.py's generated corpus (plus the same texts with CRLF, tabs, list markers
and odd Unicode mixed in, so the fast paths' fallbacks are exercised).

The reference runs in a subprocess whose `newsetl` package is assembled from `git archive <ref>` (the
same folder -> package mapping as pyproject.toml), so both run on this interpreter and libraries.
Exit status 0 = identical on every text; 1 = differences (the first few are printed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PACKAGES = ("schemas", "sources", "text", "warehouse", "tasks", "flows", "synth")


def corpus(limit: int | None) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, text, titles) of every input, in a fixed order."""
    sys.path.insert(0, str(REPO / "bench"))
    from bench_clean import make_article

    out: list[tuple[str, str, tuple[str, ...]]] = []
    titles_path = SHARED / "eval" / "aeb-dev" / "titles.json"
    titles = json.loads(titles_path.read_text(encoding="utf-8")) if titles_path.exists() else {}
    for folder in ("aeb-dev", "traf-dev"):
        for p in sorted((SHARED / "eval" / folder / "text").glob("*.txt")):
            out.append((f"{folder}/{p.stem}", p.read_text(encoding="utf-8"), tuple(titles.get(p.stem, ()))))
    docs = SHARED / "eval" / "dedup-dev" / "docs.jsonl"
    if docs.exists():
        for line in docs.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            first = rec["text"].strip().split("\n", 1)[0]
            out.append((f"dedup/{rec['id']}", rec["text"], (first,)))
    for p in sorted((SHARED / "seeds").glob("*.txt")):
        text = p.read_text(encoding="utf-8")
        out.append((f"seeds/{p.stem}", text, (text.split("\n", 1)[0],)))
    rng = random.Random(11)
    for n in range(300):
        out.append((f"bench/{n}", make_article(rng), ("Council backs plan to cut costs",)))
    # Variants: the same texts with the odd characters and layouts real inputs have.
    mutated = []
    for name, text, ts in out[:: max(1, len(out) // 400)]:
        mutated.append((f"{name}#mut", _mutate(text, rng), ts))
    out.extend(mutated)
    return out[:limit] if limit else out


_ODD = ["\r", "\t", " ", "\u00a0", "ß", "İ", "ﬁ", "Σ", "\u0301", "“", "”", "’", "- ", "• ", "3. ", "©", "\u2028",
        "\x85", "\u3000", "１", "Ⅻ", "ǅ", "ὒ", "ﷺ", "\ufeff"]


def _mutate(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    for i in range(len(lines)):
        r = rng.random()
        if r < 0.15:
            lines[i] = rng.choice(_ODD) + lines[i]
        elif r < 0.3:
            pos = rng.randint(0, len(lines[i]))
            lines[i] = lines[i][:pos] + rng.choice(_ODD) + lines[i][pos:]
        elif r < 0.35:
            lines[i] = lines[i].upper()
        elif r < 0.4:
            lines[i] = lines[i] + rng.choice(["\r", "  ", "\t"])
    return "\n".join(lines)


def _result(res: Any) -> dict[str, Any]:
    return {"body": res.body, "removals": [[r.category, r.rule, r.text, r.position] for r in res.removals]}


def dump(limit: int | None, out_path: Path) -> None:
    """Clean every text in every mode with the `newsetl` importable here; write one JSON line each."""
    from newsetl.text import clean as clean_mod
    from newsetl.text.clean import clean_text, normalize_line
    from newsetl.text.linemodel import load_line_model
    from newsetl.text.rules import load_rules

    rules = load_rules()
    # `learned_only()` before 2026-12-07: the reference may be a revision from before the rename.
    learned_rules = rules.without_patterns() if hasattr(rules, "without_patterns") else rules.learned_only()
    model = load_line_model()
    texts = corpus(limit)
    # A learned key set: keys of lines that recur in many texts (what a publisher's learned set holds).
    counts = Counter(k for _, text, _ in texts for k in {normalize_line(x) for x in text.split("\n")} if k)
    learned = frozenset(k for k, c in counts.items() if c >= 3)
    batch = getattr(clean_mod, "clean_batch", None)
    batched: list[Any] = []
    if batch is not None:
        batched = batch([t for _, t, _ in texts], rules, titles=[ts for _, _, ts in texts], model=model)
    with out_path.open("w", encoding="utf-8") as f:
        for n, (name, text, ts) in enumerate(texts):
            rec = {
                "name": name,
                "rules": _result(clean_text(text, rules, titles=ts)),
                "model": _result(clean_text(text, rules, titles=ts, model=model)),
                "learned": _result(clean_text(text, learned_rules, titles=ts, learned=learned)),
                "all": _result(clean_text(text, rules, titles=ts, learned=learned, model=model)),
            }
            if batch is not None:
                rec["batch"] = _result(batched[n])
            f.write(json.dumps(rec) + "\n")


def build_reference(ref: str, into: Path) -> Path:
    """A `newsetl` package tree from `git archive <ref>`, laid out as pyproject.toml maps it."""
    src = into / "src"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref], check=True,
                             capture_output=True).stdout
    tar_path = into / "ref.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(src, filter="data")
    pkg = into / "pkg" / "newsetl"
    shutil.copytree(src / "newsetl", pkg)
    for name in PACKAGES:
        shutil.copytree(src / name, pkg / name)
    return into / "pkg"


def dump_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def reference_lines(pkg_root: Path, tmpdir: Path, script: list[str], extra: list[str], probe: str) -> list[str] | None:
    """Run `script ... <out> extra` on this interpreter with the reference tree `pkg_root` first on the
    path, and return its dump's lines; None (said on stderr) if `probe` would not import from that tree,
    i.e. the comparison would be this checkout against itself."""
    env = dict(os.environ, PYTHONPATH=str(pkg_root))
    check = subprocess.run([sys.executable, "-c", f"import {probe} as m; print(m.__file__)"],
                           env=env, cwd=tmpdir, capture_output=True, text=True, check=True).stdout.strip()
    if not check.startswith(str(pkg_root)):
        print(f"reference import resolved to {check}, not the reference tree", file=sys.stderr)
        return None
    out = tmpdir / "ref.jsonl"
    subprocess.run([sys.executable, *script, str(out), *extra], check=True, env=env, cwd=tmpdir)
    return dump_lines(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", default="main", help="git revision of the reference cleaner")
    ap.add_argument("--limit", type=int, default=None, help="only the first N texts")
    ap.add_argument("--dump", type=Path, default=None, help=argparse.SUPPRESS)  # the subprocess's mode
    args = ap.parse_args(argv)
    if args.dump is not None:
        dump(args.limit, args.dump)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        pkg_root = build_reference(args.ref, tmpdir)
        limit = ["--limit", str(args.limit)] if args.limit else []
        ref_lines = reference_lines(pkg_root, tmpdir, [str(Path(__file__).resolve()), "--dump"], limit,
                                    "newsetl.text.clean")
        if ref_lines is None:
            return 2
        new_out = tmpdir / "new.jsonl"
        dump(args.limit, new_out)
        new_lines = dump_lines(new_out)
    if len(ref_lines) != len(new_lines):
        print(f"different number of texts: {len(ref_lines)} vs {len(new_lines)}")
        return 1
    diffs = 0
    modes: Counter[str] = Counter()
    removals = 0
    for a, b in zip(ref_lines, new_lines, strict=True):
        ra, rb = json.loads(a), json.loads(b)
        for mode in ("rules", "model", "learned", "all"):
            modes[mode] += 1
            removals += len(ra[mode]["removals"])
            if ra[mode] != rb[mode]:
                diffs += 1
                if diffs <= 5:
                    print(f"DIFF {ra['name']} [{mode}]\n  ref: {json.dumps(ra[mode])[:600]}\n"
                          f"  new: {json.dumps(rb[mode])[:600]}")
        if "batch" in rb:
            modes["batch"] += 1
            if rb["batch"] != ra["model"]:
                diffs += 1
                if diffs <= 5:
                    print(f"DIFF {ra['name']} [batch vs reference clean_text with model]")
    digest = hashlib.sha256("\n".join(ref_lines).encode()).hexdigest()[:16]
    print(json.dumps({"texts": len(ref_lines), "comparisons": dict(modes), "reference_removals": removals,
                      "differences": diffs, "ref": args.ref, "ref_digest": digest}))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
