"""The policy language and engine: admin-edited YAML rules turn a login into a Decision.

Public API: ``PolicyInput`` (what is decided on), ``PolicyEngine`` (load a folder,
``decide``, ``provider_can_satisfy``), ``PolicyHolder`` (the engine in use, safe reload).
See ``broker.policy.schema`` for the file format and ``broker.policy.conditions`` for
the ``when`` language.
"""

from broker.policy.engine import Evaluation, PolicyEngine, PolicyHolder
from broker.policy.inputs import PolicyInput, make_input

__all__ = ["Evaluation", "PolicyEngine", "PolicyHolder", "PolicyInput", "make_input"]
