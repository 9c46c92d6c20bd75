"""The core API. The HTTP service, the CLI and Python callers all go through ``BioMatch``.

Every call names the ``Principal`` it acts for; the role matrix, the gallery's policy and the
audit log apply to all of them alike. Each area lives in its own module under ``core/``.
"""

from __future__ import annotations

from biomatch.accountability.principal import SYSTEM
from biomatch.core.batch_jobs import BatchJobsAPI
from biomatch.core.capture import CaptureAPI
from biomatch.core.galleries import GalleriesAPI
from biomatch.core.index_maintenance import IndexMaintenanceAPI
from biomatch.core.interchange import InterchangeAPI
from biomatch.core.operators import OperatorsAPI
from biomatch.core.oversight import OversightAPI
from biomatch.core.probe import ProbeItem
from biomatch.core.references import ReferencesAPI
from biomatch.core.review import ReviewAPI
from biomatch.core.search import SearchAPI
from biomatch.core.state import DEFAULT_MODALITY


class BioMatch(
    OperatorsAPI,
    GalleriesAPI,
    ReferencesAPI,
    SearchAPI,
    InterchangeAPI,
    OversightAPI,
    CaptureAPI,
    ReviewAPI,
    IndexMaintenanceAPI,
    BatchJobsAPI,
):
    """Open it with ``BioMatch(Settings())``; close it with ``close()``."""


__all__ = ["DEFAULT_MODALITY", "SYSTEM", "BioMatch", "ProbeItem"]
