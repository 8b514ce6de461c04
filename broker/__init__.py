"""Varco: an identity broker; OpenID Connect to relying parties, login methods to citizens."""
