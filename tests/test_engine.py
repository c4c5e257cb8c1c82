"""The engine isolates plugins: a crash is an error result naming the plugin, never a pass."""

from __future__ import annotations

import datetime as dt
import sys
import textwrap

import pytest

from audit import hookimpl
from audit.engine import DuplicateCheckId, ExitCode, exit_code, run_audit
from audit.host.core import Host
from audit.model import Check, Severity, Status, check, failed, passed, warned
from audit.plugins import make_plugins
from audit.policy import Policy, Waiver

FIXED = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def plugins():
    return make_plugins(builtins=(), entry_points=False)


@pytest.fixture
def host(make_root):
    return Host.from_root(str(make_root({"etc/hostname": "img\n"})))


def one(check_id: str, status_fn, severity=Severity.MEDIUM) -> Check:
    @check(check_id, title=f"t {check_id}", severity=severity)
    def c(host, policy):
        """rationale"""
        return status_fn("msg")

    return c


class Crashing:
    @hookimpl
    def hostaudit_checks(self):
        raise RuntimeError("boom")


class Good:
    @hookimpl
    def hostaudit_checks(self):
        return [one("demo.ok", passed)]


def test_a_crashing_plugin_is_an_error_result(plugins, host):
    plugins.pm.register(Crashing(), name="crashing")
    plugins.pm.register(Good(), name="good")
    report = run_audit(plugins, host)
    by_id = {r.id: r for r in report.results}
    assert by_id["plugin.crashing"].status is Status.ERROR
    assert by_id["plugin.crashing"].plugin == "crashing"
    assert "boom" in by_id["plugin.crashing"].outcome.message
    assert by_id["demo.ok"].status is Status.PASS
    assert exit_code(report) is ExitCode.INCOMPLETE


def test_a_crashing_check_is_an_error_not_a_pass(plugins, host):
    @check("demo.crash", title="t", severity=Severity.HIGH)
    def crash(host, policy):
        """r"""
        raise ZeroDivisionError("nope")

    class P:
        @hookimpl
        def hostaudit_checks(self):
            return [crash]

    plugins.pm.register(P(), name="p")
    (result,) = run_audit(plugins, host).results
    assert result.status is Status.ERROR
    assert "ZeroDivisionError: nope" in result.outcome.message


def test_a_check_returning_garbage_is_an_error(plugins, host):
    @check("demo.garbage", title="t", severity=Severity.HIGH)
    def garbage(host, policy):
        """r"""
        return "pass"

    class P:
        @hookimpl
        def hostaudit_checks(self):
            return [garbage]

    plugins.pm.register(P(), name="p")
    (result,) = run_audit(plugins, host).results
    assert result.status is Status.ERROR


def test_bad_ids_and_non_checks_are_plugin_errors(plugins, host):
    class BadId:
        @hookimpl
        def hostaudit_checks(self):
            return [one("NoDots", passed)]

    class NotCheck:
        @hookimpl
        def hostaudit_checks(self):
            return ["x"]

    plugins.pm.register(BadId(), name="badid")
    plugins.pm.register(NotCheck(), name="notcheck")
    statuses = {r.id: r.status for r in run_audit(plugins, host).results}
    assert statuses == {"plugin.badid": Status.ERROR, "plugin.notcheck": Status.ERROR}


def test_duplicate_ids_stop_start_up_naming_both_plugins(plugins, host):
    class A:
        @hookimpl
        def hostaudit_checks(self):
            return [one("demo.same", passed)]

    class B:
        @hookimpl
        def hostaudit_checks(self):
            return [one("demo.same", passed)]

    plugins.pm.register(A(), name="first")
    plugins.pm.register(B(), name="second")
    with pytest.raises(DuplicateCheckId, match="'first' and 'second'"):
        run_audit(plugins, host)


def test_builtin_module_that_fails_to_import_is_reported(host):
    plugins = make_plugins(builtins=("checks.kernel", "checks.no_such_module"), entry_points=False)
    report = run_audit(plugins, host)
    broken = [r for r in report.results if r.id == "plugin.checks-no_such_module"]
    assert broken and broken[0].status is Status.ERROR
    assert "ModuleNotFoundError" in broken[0].outcome.message
    assert any(r.id == "kernel.ksm" for r in report.results)


def _write_dist(site, name, module_src, ep_value):
    """A real installed distribution (a dist-info on sys.path) with an entry point, like flake8's tests."""
    (site / f"{name}.py").write_text(textwrap.dedent(module_src))
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[hostaudit]\n{name} = {ep_value}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    yield site
    for mod in ("ha_demo_plugin", "ha_broken_plugin"):
        sys.modules.pop(mod, None)


def test_third_party_plugin_through_a_real_entry_point(site, host):
    _write_dist(site, "ha_demo_plugin", '''
        from audit import hookimpl
        from audit.model import Severity, check, passed

        @check("ovs.bridge", title="OVS bridge", severity=Severity.LOW)
        def bridge(host, policy):
            """Bridges carry guest traffic."""
            return passed("ok")

        @hookimpl
        def hostaudit_checks():
            return [bridge]
    ''', "ha_demo_plugin")
    plugins = make_plugins(builtins=())
    assert plugins.origins["ha_demo_plugin"] == "ha_demo_plugin 1.0"
    (result,) = run_audit(plugins, host).results
    assert (result.id, result.status, result.plugin) == ("ovs.bridge", Status.PASS, "ha_demo_plugin")


def test_third_party_plugin_that_fails_to_load(site, host):
    _write_dist(site, "ha_broken_plugin", "raise ImportError('missing dependency ovs')\n", "ha_broken_plugin")
    (result,) = run_audit(make_plugins(builtins=()), host).results
    assert result.id == "plugin.ha_broken_plugin"
    assert result.status is Status.ERROR
    assert "missing dependency ovs" in result.outcome.message and "ha_broken_plugin 1.0" in result.outcome.message


def test_select_and_ignore(plugins, host):
    class P:
        @hookimpl
        def hostaudit_checks(self):
            return [one("kernel.a", passed), one("kernel.b", passed), one("cpu.a", passed)]

    plugins.pm.register(P(), name="p")
    ids = [r.id for r in run_audit(plugins, host, select=["kernel.*"], ignore=["kernel.b"]).results]
    assert ids == ["kernel.a"]


def test_results_sorted_and_clock_injected(plugins, host):
    class P:
        @hookimpl
        def hostaudit_checks(self):
            return [one("z.a", passed), one("a.a", passed)]

    plugins.pm.register(P(), name="p")
    report = run_audit(plugins, host, clock=lambda: FIXED, timer=lambda: 0.0)
    assert [r.id for r in report.results] == ["a.a", "z.a"]
    assert report.started_at == "2026-11-26T12:00:00Z"
    assert report.duration_ms == 0.0
    assert report.target.hostname == "img"


def test_exit_codes(plugins, host):
    class P:
        @hookimpl
        def hostaudit_checks(self):
            return [one("a.low", failed, Severity.LOW), one("a.warn", warned, Severity.HIGH)]

    plugins.pm.register(P(), name="p")
    assert exit_code(run_audit(plugins, host, fail_on=Severity.LOW)) is ExitCode.FAILED
    assert exit_code(run_audit(plugins, host, fail_on=Severity.MEDIUM)) is ExitCode.OK
    assert exit_code(run_audit(plugins, host, fail_on=Severity.MEDIUM, strict=True)) is ExitCode.FAILED


def test_nothing_ran_is_not_success(plugins, host):
    from audit.model import skipped

    class P:
        @hookimpl
        def hostaudit_checks(self):
            return [one("a.skip", skipped)]

    plugins.pm.register(P(), name="p")
    assert exit_code(run_audit(plugins, host)) is ExitCode.INCOMPLETE
    assert exit_code(run_audit(plugins, host, select=["none.*"])) is ExitCode.INCOMPLETE


def test_waivers_disabled_and_severity_overrides(plugins, host):
    class P:
        @hookimpl
        def hostaudit_checks(self):
            return [one("a.live", failed), one("a.expired", failed), one("a.off", failed), one("a.sev", failed)]

    plugins.pm.register(P(), name="p")
    policy = Policy(
        waivers={
            "a.live": Waiver(reason="ticket 42", expires=dt.date(2027, 1, 1)),
            "a.expired": Waiver(reason="old", expires=dt.date(2026, 1, 1)),
        },
        disabled=("a.off",),
        severity_overrides={"a.sev": Severity.INFO},
    )
    report = run_audit(plugins, host, policy, clock=lambda: FIXED)
    by_id = {r.id: r for r in report.results}
    assert by_id["a.live"].status is Status.WAIVED and "ticket 42" in by_id["a.live"].outcome.message
    assert by_id["a.expired"].status is Status.FAIL and "expired" in by_id["a.expired"].waiver
    assert by_id["a.off"].status is Status.SKIP
    assert by_id["a.sev"].effective_severity is Severity.INFO
    assert exit_code(report) is ExitCode.FAILED  # a.expired still fails
    assert exit_code(run_audit(plugins, host, policy, select=["a.live", "a.sev"], clock=lambda: FIXED,
                               fail_on=Severity.LOW)) is ExitCode.OK
