"""A test SAML IdP on pysaml2 for the demo and the tests: SPID-shaped, signed responses."""
