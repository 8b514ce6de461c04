"""The OpenID Connect provider RPs talk to: discovery, keys, authorize, tokens, logout.

``OidcCore`` holds the authorization server's state and answers RPs for the login hub
(``broker.login.interaction.Authorizer``); ``OidcFront`` serves the endpoints. Which
claims each scope releases is documented in ``broker.oidc.claims``.
"""
