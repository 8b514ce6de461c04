"""Generic SAML 2.0 service-provider machinery (python3-saml/xmlsec) that SPID and CIE share.

Nothing here knows SPID or CIE rules: profiles pass their own expectations (issuer
format, accepted levels, requested attributes) to the validators in ``response``.
"""
