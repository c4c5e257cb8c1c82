"""Helpers for tests that run single checks on fake roots: a policy with changes, the fix commands
and the evidence of an outcome as text, and an ``audit`` fixture factory."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from audit.engine import run_check
from audit.host.core import Host
from audit.model import Check, Outcome, replace
from audit.policy import DEFAULT_POLICY, Policy


def policy(**changes: Any) -> Policy:
    return replace(DEFAULT_POLICY, **changes)


def fix(out: Outcome) -> list[str]:
    assert out.remediation is not None, out
    return list(out.remediation.commands)


def observed(out: Outcome) -> str:
    return "\n".join(f"{e.source}: {e.observed}" for e in out.evidence)


def auditor(checks: Mapping[str, Check], make_root: Callable[[dict], Path]) -> Callable[..., Outcome]:
    """``audit(check_id, tree, policy)``: the check run on a root built from ``tree``."""

    def run(check_id: str, tree: dict, pol: Policy = DEFAULT_POLICY) -> Outcome:
        return run_check(checks[check_id], Host.from_root(str(make_root(tree))), pol)

    return run
