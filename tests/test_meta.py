"""Meta-tests that keep the plugin contract honest."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from audit import hookspecs
from audit.engine import collect_checks
from audit.model import CHECK_ID_RE, Status
from audit.plugins import make_plugins

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def builtin_checks():
    declared, broken = collect_checks(make_plugins(entry_points=False))
    assert not broken, [b.check.id for b in broken]
    return [d.check for d in declared]


def test_every_hook_is_documented_in_the_readme_with_its_signature():
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith("hostaudit_"):
            continue
        assert fn.__doc__, f"{name} has no docstring"
        sig = f"{name}()"
        assert f"`{sig} -> " in README, f"hook {name} is not documented in README.md as `{sig} -> ...`"


def test_builtin_check_ids_titles_rationales():
    checks = builtin_checks()
    ids = [c.id for c in checks]
    assert len(ids) == len(set(ids))
    for c in checks:
        assert re.match(CHECK_ID_RE, c.id), c.id
        assert c.title.strip(), c.id
        assert len(c.rationale) > 20, f"{c.id}: rationale missing (the docstring is the rationale)"
        assert c.example_fix, f"{c.id}: a check that can fail needs a remediation example"


def test_readme_catalogue_is_in_sync():
    import sys

    sys.path.insert(0, str(REPO / "tools"))
    from gen_readme_catalogue import render

    assert render(README) == README, "README catalogue is stale: run python tools/gen_readme_catalogue.py"


def test_every_status_value_is_lowercase_and_str():
    assert [str(s) for s in Status] == ["pass", "warn", "fail", "error", "skip", "waived"]
    assert f"{Status.PASS}" == "pass"


def test_checks_do_not_touch_the_filesystem_directly():
    forbidden = re.compile(r"\b(open\(|os\.uname|platform\.|subprocess|glob\.|os\.listdir|Path\()")
    for path in (REPO / "checks").glob("*.py"):
        text = path.read_text()
        assert not forbidden.search(text), f"{path.name} reads the filesystem directly"
