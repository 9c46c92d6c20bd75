"""Records: galleries, subjects, samples and templates (SQLAlchemy, Alembic migrations)."""

from biomatch.store import changes as changes  # registers the index_changes table
from biomatch.store.database import Database
from biomatch.store.models import Gallery, Sample, Subject, Template

__all__ = ["Database", "Gallery", "Sample", "Subject", "Template"]
