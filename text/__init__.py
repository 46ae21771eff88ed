"""The pure text core: every stage a plain function over text, no Prefect, no DuckDB.

- `extract.py`: HTML to text and metadata (trafilatura).
- `repair.py`: broken characters and spacing (ftfy + our passes).
- `clean.py`: boilerplate removal; `rules.py` compiles the pattern library, `lines.py` says what a line
  looks like, `structure.py` holds the passes that look at a line's neighbours, `learned.py` what the
  warehouse counts for learned boilerplate.
- `describe.py`: title, byline, date, publisher, original publisher, language.
- `pipeline.py`: one document through all of the above (`process_document`).
- `words.py`: how many words a text has, in any script (`word_count`, the extraction's floors).
- `sign.py`: MinHash signatures; `lsh.py`: candidates, verification, union-find (pure numpy).
- `linefeatures.py` and `linemodel.py`: the learned line classifier's features and its inference (the
  model file is in `models/`); `discard.py`: trafilatura's costliest XPaths rewritten as Python walks
  (same output, faster extraction).
- `author.py`, `publishers.py`, `lexicon.py`: bylines, outlet names and aliases, the word lists the
  features and describe share; `memo.py`: a worker's memory of per-line answers.

Nothing under this package may import prefect or duckdb (tests/test_layers.py proves it), so
every stage can be unit-tested and reused outside the pipeline.
"""
