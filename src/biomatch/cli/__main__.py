"""``python -m biomatch.cli``: the same command as ``biomatch``."""

from biomatch.cli import app

app()
