"""Processes of distributed mode: rank layout, set-up and failure handling, waits, supervisor, end of run."""
