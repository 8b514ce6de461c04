"""Varco: an identity broker that speaks OpenID Connect to relying parties and PIN, SPID, CIE and CNS to citizens."""
