"""The data side: the export contract, its validation, DuckDB and its SQL, drift checks."""
