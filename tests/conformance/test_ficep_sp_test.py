"""AgID's spid-sp-test, profile ``ficep-eidas-sp``: the SPID SP metadata with FICEP's two
eIDAS attribute sets (99 minimum, 100 full) as the eIDAS node requires them.

The broker is the SPID conformance broker (``test_spid_sp_test``), whose demo providers
include ``eidas``: its metadata declares both sets, and the SPID profiles, run on the
same metadata there, still pass.
"""

from __future__ import annotations

import pytest

from tests.conformance.summary import report as report_line
from tests.conformance.test_spid_sp_test import Conformance, _checks, _failures
from tests.conformance.test_spid_sp_test import public as public

pytestmark = pytest.mark.integration


def test_metadata_ficep_eidas_profile(public: Conformance) -> None:
    proc, report = public.run("--extra", "-pr", "ficep-eidas-sp")
    assert proc.returncode == 0, _failures(report) or proc.stdout[-2000:] + proc.stderr[-2000:]
    checks = _checks(report, "metadata")
    assert len(checks) >= 60 and all(c["result"] == "success" for c in checks)
    ficep = [c for c in checks if "FICEP" in str(c.get("method", ""))]
    assert ficep, "the FICEP attribute-set checks did not run"
    report_line(f"spid-sp-test ficep-eidas-sp: {len(checks)} metadata checks, "
                f"{len(ficep)} on the eIDAS sets, all successful")
