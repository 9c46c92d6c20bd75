"""Accuracy measured in the product: LFW verification and closed-set identification."""
