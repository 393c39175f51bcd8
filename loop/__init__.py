"""The round runner (YAML round config -> stage DAG -> artifacts) and the `herd` CLI."""
