"""Accountability built into the core: operators and roles, gallery policies, encounters,
the hash-chained audit log, retention, consent and opt-out, and encryption at rest."""
