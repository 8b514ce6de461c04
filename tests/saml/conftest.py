"""Fixtures for the SAML tests: one real SP/IdP pair per module."""

from __future__ import annotations

import pytest
from saml_helpers import SamlPair, make_pair


@pytest.fixture(scope="module")
def saml(tmp_path_factory: pytest.TempPathFactory) -> SamlPair:
    return make_pair(tmp_path_factory.mktemp("saml"))
