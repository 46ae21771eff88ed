"""Record types, Arrow schemas, DuckDB DDL and rule data shared by every stage."""
