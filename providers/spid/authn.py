"""The SPID AuthnRequest: the shared SPID/CIE one in ``providers.saml.authn``."""

from providers.saml.authn import (
    OutgoingRequest,
    build_authn_request,
    choose_sso,
    encode_post,
    encode_redirect,
    post_form,
)

__all__ = ["OutgoingRequest", "build_authn_request", "choose_sso", "encode_post",
           "encode_redirect", "post_form"]
