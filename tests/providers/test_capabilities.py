"""``providers.base.supports``: the optional protocols, answered as ``isinstance`` does."""

from __future__ import annotations

from providers.base import Choices, LeavesOnStart, supports


class Leaving:
    def leaves_on_start(self, hint: str | None) -> bool:
        return bool(hint)



class Staying:
    def choices(self) -> list[dict[str, str]]:
        return []

    def has_choice(self, choice_id: str) -> bool:
        return False


def test_each_provider_class_answers_as_isinstance_does() -> None:
    for provider in (Leaving(), Staying(), Leaving(), Staying()):  # second round: cached
        for capability in (LeavesOnStart, Choices):
            assert supports(provider, capability) is isinstance(provider, capability)
    assert supports(Leaving(), LeavesOnStart) and not supports(Staying(), LeavesOnStart)
