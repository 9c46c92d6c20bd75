"""BioMatch: open, accountable biometric identity verification."""

__version__ = "0.1.0"
