"""The login between the OIDC front and the providers: hub, interaction policy, roles, sessions."""
