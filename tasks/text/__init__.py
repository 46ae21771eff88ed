"""The pure text core: extract, repair, clean, describe, sign.

Nothing under this package may import prefect or duckdb (tests/test_purity.py proves it), so
every stage can be unit-tested and reused outside the pipeline.
"""
