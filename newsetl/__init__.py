"""newsetl: news-text ETL as Prefect flows into DuckDB.

The package's layers are its subpackages (docs/architecture.md): `newsetl.schemas`, `newsetl.sources`,
`newsetl.text`, `newsetl.warehouse`, `newsetl.tasks`, `newsetl.flows`, and the command line `newsetl.cli`.
"""
