"""callflows core: settings, AssemblyAI and LLM Gateway HTTP clients, API and result models,
prompt rendering, audio checks and the analyses' deterministic parts. No Prefect imports here."""

__version__ = "0.1.0"
