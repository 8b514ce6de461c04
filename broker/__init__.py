"""Varco: an identity broker; OpenID Connect to RPs, PIN, SPID, CIE and CNS to citizens."""
