"""The core API, one module per area; ``biomatch.service.BioMatch`` joins them."""
