"""The conformance suites' own summary lines, printed again at the end of the test run.

Pytest hides what a passing test prints; the SPID issue wants CI to show spid-sp-test's
summary, so ``tests/conftest.py`` lists these lines in the terminal summary.
"""

from __future__ import annotations

LINES: list[str] = []


def report(line: str) -> None:
    """Print ``line`` (seen with ``-s`` or on failure) and keep it for the run's summary."""
    print(line)
    LINES.append(line)
