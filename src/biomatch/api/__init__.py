"""HTTP layer: thin FastAPI routes over the core API."""

from biomatch.api.app import create_app

__all__ = ["create_app"]
