"""Prefect flows: one module per deployable analysis, plus the shared transcription subflow."""
