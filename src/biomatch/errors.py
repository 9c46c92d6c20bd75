"""Errors the core raises; each carries a machine-readable code and an HTTP status."""

from __future__ import annotations

from typing import Any


class BioMatchError(Exception):
    code = "biomatch_error"
    http_status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidDataset(BioMatchError, ValueError):
    """Evaluation or calibration data that does not follow its documented layout, or is too
    small for what was asked (the message says where)."""

    code = "invalid_dataset"
    http_status = 422


class InvalidImage(BioMatchError):
    code = "invalid_image"
    http_status = 400


class EmptyUpload(BioMatchError):
    code = "empty_upload"
    http_status = 400


class ImageTooLarge(BioMatchError):
    code = "image_too_large"
    http_status = 413


class InvalidRequest(BioMatchError):
    code = "invalid_request"
    http_status = 422


class InvalidIdentifier(InvalidRequest):
    """A subject id, gallery, operator name or person reference that is empty, too long, or
    holds characters that do not print (controls, bidi overrides, zero-width)."""

    code = "invalid_identifier"


class TooManyImages(BioMatchError):
    code = "too_many_images"
    http_status = 413


class UnknownModality(BioMatchError):
    code = "unknown_modality"
    http_status = 422


class GalleryNotFound(BioMatchError):
    code = "gallery_not_found"
    http_status = 404


class SubjectNotFound(BioMatchError):
    code = "subject_not_found"
    http_status = 404


class GalleryExists(BioMatchError):
    code = "gallery_exists"
    http_status = 409


class SubjectExists(BioMatchError):
    code = "subject_exists"
    http_status = 409


class NoReference(BioMatchError):
    """The claimed subject has no template of the probe's modality and model."""

    code = "no_reference_template"
    http_status = 409


class QualityRejected(BioMatchError):
    """The capture failed the quality gate; ``details['reasons']`` says why."""

    code = "quality_rejected"
    http_status = 422


class Unauthenticated(BioMatchError):
    code = "unauthenticated"
    http_status = 401


class Forbidden(BioMatchError):
    code = "forbidden"
    http_status = 403


class PolicyForbids(BioMatchError):
    """The gallery's policy does not allow this mode, role or request."""

    code = "policy_forbids"
    http_status = 403


class SearchContextMissing(BioMatchError):
    """A search without its purpose, legal authority or required case reference."""

    code = "search_context_required"
    http_status = 422


class ConsentRequired(BioMatchError):
    code = "consent_required"
    http_status = 422


class OptedOut(BioMatchError):
    code = "opted_out"
    http_status = 409


class RateLimited(BioMatchError):
    code = "rate_limited"
    http_status = 429


class LoginThrottled(BioMatchError):
    """Too many failed logins from one client address or for one token id."""

    code = "login_throttled"
    http_status = 429


class Busy(BioMatchError):
    """This worker's extraction queue is full; ``details['retry_after_s']`` says when to retry."""

    code = "busy"
    http_status = 503


class RevocationRefused(BioMatchError):
    """An operator may not revoke their own token, nor the last active admin."""

    code = "revocation_refused"
    http_status = 409


class EncounterNotFound(BioMatchError):
    code = "encounter_not_found"
    http_status = 404


class OperatorExists(BioMatchError):
    code = "operator_exists"
    http_status = 409


class OperatorNotFound(BioMatchError):
    code = "operator_not_found"
    http_status = 404


class AdjudicationRefused(BioMatchError):
    code = "adjudication_refused"
    http_status = 409


class CryptoError(BioMatchError):
    """A key is missing or wrong, or a stored record failed authentication."""

    code = "crypto_error"
    http_status = 500


class ModelUnavailable(BioMatchError):
    """A model or native library the configured modality needs is not installed."""

    code = "model_unavailable"
    http_status = 503


class IndexUnavailable(BioMatchError):
    """The external 1:N index (Milvus) did not answer; the record store is untouched."""

    code = "index_unavailable"
    http_status = 503


class InvalidTemplate(BioMatchError):
    """A template or interchange record that cannot be decoded."""

    code = "invalid_template"
    http_status = 422


class ImageNotKept(BioMatchError):
    """The image asked for is not kept (the gallery's policy, retention, or no such item)."""

    code = "image_not_kept"
    http_status = 404
