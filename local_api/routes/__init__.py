"""The app's routers, one module per area, included by local_api/app.py's ``create_app``:
``transcripts`` (/v2), ``gateway`` (/v1), ``control`` (/_local); ``common`` holds what they share."""
