"""The fleet's JUnit document (one ``testsuite`` per host, a broken snapshot's suite too, a hostile host
among them) validated against the Jenkins xUnit schema, ``../shared/schemas/jenkins-junit-10.xsd``
beside the clone (CI has it; it is not copied into the project). Without it this test skips and says
so; tests/test_fleet.py parses and counts the same XML without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import _report_fixtures as fx
from tests.test_fleet import fleet, run  # noqa: F401 (fleet: the fixture)

XSD = fx.REPO.parent / "shared" / "schemas" / "jenkins-junit-10.xsd"


def test_the_fleet_junit_validates(fleet: Path, tmp_path: Path) -> None:  # noqa: F811
    if not XSD.exists():
        pytest.skip(f"JUnit schema not found at {XSD} (CI places shared/ beside the clone); tests/test_fleet.py "
                    "checked the fleet's JUnit without validating it against the schema")
    import xmlschema

    proc = run("run", "--snapshot", str(fleet), "--no-entry-points", "-q", "-o", str(tmp_path / "fleet.xml"))
    assert proc.returncode == 1, proc.stderr
    xmlschema.XMLSchema(str(XSD)).validate(str(tmp_path / "fleet.xml"))
    proc = run("run", "--snapshot", str(fleet), "--no-entry-points", "--format", "junit")
    xmlschema.XMLSchema(str(XSD)).validate(proc.stdout)
