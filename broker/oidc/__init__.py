"""The OpenID Connect provider RPs talk to: discovery, keys, authorize, tokens, logout.

``OidcFront(ctx)`` is the whole of it for the app factory: ``.router`` carries every
endpoint, ``finish``/``deny`` implement ``broker.login.interaction.AuthorizationFront`` and
``client_info`` tells the login hub what an RP requires. Which claims each scope
releases is documented in ``broker.oidc.claims``.
"""

from broker.oidc.front import OidcFront

__all__ = ["OidcFront"]
