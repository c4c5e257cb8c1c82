"""A grubenv saved_entry that names no menu entry is its own finding, boot.saved_entry, not a
boot.params one (issue #10 section 6). GRUB does not stop on it: run_menu() in
grub-core/normal/menu.c falls back to entry 0 when the default matches no entry ("If DEFAULT_ENTRY
is not within the menu entries, fall back to the first entry"), and inside a submenu path to the
submenu's first entry; the finding says which entry boots.

Trees are built from the real samples: the RHEL 9 layout (ESP stub, el8-bls-grub.cfg, a BLS entry
from the Rocky 8.5 sample), RHEL 7.2's grub2-mkconfig output (grubby's test/grub2.18, which sets
``default="${saved_entry}"``), Debian 12's update-grub output. Debian's with GRUB_DEFAULT=saved is
the sample with the one line grub-mkconfig's 00_header writes for it (``set default="${saved_entry}"``
in place of ``set default="1>2"``)."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from audit.engine import collect_checks, run_check
from audit.host.core import Host
from audit.model import Outcome, Status
from audit.plugins import make_plugins
from audit.policy import DEFAULT_POLICY
from tests import trees

CHECKS = {d.check.id: d.check for d in collect_checks(make_plugins(entry_points=False))[0]}
MID = "0123456789abcdef0123456789abcdef"
GONE = f"{MID}-5.14.0-427.13.1.el9_4.x86_64"  # a kernel removed since it was made the default
RHEL7_RELEASE = "3.10.0-327.22.2.el7.x86_64"
RHEL7_FIRST = "Red Hat Enterprise Linux Server (3.10.0-327.22.2.el7.x86_64.debug) 7.2 (Maipo)"
RHEL7_FIRST_ID = "gnulinux-3.10.0-327.el7.x86_64-advanced-91b16928-66bf-4801-8aed-fab3f1a6876c"
RHEL7_GONE = "Red Hat Enterprise Linux Server (3.10.0-229.el7.x86_64) 7.2 (Maipo)"
DEBIAN_SUBMENU = "Advanced options for Debian GNU/Linux"


@pytest.fixture
def audit(make_root):
    def run(check_id: str, tree: dict) -> Outcome:
        return run_check(CHECKS[check_id], Host.from_root(str(make_root(tree))), DEFAULT_POLICY)

    return run


def observed(outcome: Outcome) -> str:
    return "\n".join(f"{e.source}: {e.observed}" for e in outcome.evidence)


def rhel9(**env: str) -> dict:
    tree = trees.rhel9_tree()
    tree["boot/grub2/grubenv"] = trees.grubenv(**env, kernelopts=trees.EL9_KERNELOPTS)
    return tree


def rhel7_live(**env: str) -> dict:
    tree = trees.live_tree(cpuinfo="intel-xeon-e5-2680v3-haswell-ep.txt", release=RHEL7_RELEASE,
                           cmdline=f"BOOT_IMAGE=/vmlinuz-{RHEL7_RELEASE} root=/dev/mapper/rhel-root ro")
    tree.update({
        "etc/os-release": 'NAME="Red Hat Enterprise Linux Server"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="7.2"\n',
        "boot/grub2/grub.cfg": trees.grub_sample("rhel72-grub.cfg"),
        "boot/grub2/grubenv": trees.grubenv(**env),
    })
    return tree


def debian_saved(saved_entry: str | None, *, grub_cfg: str | None = None) -> dict:
    tree = trees.debian12_tree("", "")
    text = grub_cfg or tree["boot/grub/grub.cfg"]
    assert 'set default="1>2"' in text
    tree["boot/grub/grub.cfg"] = text.replace('set default="1>2"', 'set default="${saved_entry}"')
    tree["boot/grub/grubenv"] = trees.grubenv(**({"saved_entry": saved_entry} if saved_entry is not None else {}))
    return tree


def bash_n(cmd: str) -> bool:
    return subprocess.run(["bash", "-n"], input=cmd + "\n", capture_output=True, text=True, timeout=30).returncode == 0


# -- the finding --------------------------------------------------------------------------------------


def test_a_bls_saved_entry_naming_a_removed_kernel_is_its_own_finding(audit):
    tree = rhel9(saved_entry=GONE)
    out = audit("boot.saved_entry", tree)
    assert out.status is Status.WARN
    assert out.message == (f"/boot/grub2/grubenv: saved_entry='{GONE}' names no menu entry: GRUB boots 'Red Hat "
                           "Enterprise Linux (5.14.0-570.18.1.el9_6.x86_64) 9.6 (Plow)' (menu position 0) instead")
    assert out.evidence[0].source == "/boot/grub2/grubenv:2"
    assert out.evidence[0].observed == f"saved_entry='{GONE}'"
    assert f"/boot/loader/entries: 1 entries: {trees.EL9_ENTRY}" in observed(out)
    # an image: the block itself, under "$ROOT", with the BLS id of the entry GRUB falls back to
    assert out.remediation is not None and not out.remediation.reboot_required
    assert out.remediation.commands == (f'grub2-editenv "$ROOT"/boot/grub2/grubenv set saved_entry={trees.EL9_ENTRY}',)
    params = audit("boot.params", tree)
    assert params.status is Status.PASS and "matches no menu entry" not in params.message


def test_a_saved_entry_that_names_an_entry_passes(audit):
    out = audit("boot.saved_entry", rhel9(saved_entry=trees.EL9_ENTRY))
    assert out.status is Status.PASS
    assert out.message == (f"grubenv saved_entry='{trees.EL9_ENTRY}' names 'Red Hat Enterprise Linux "
                           "(5.14.0-570.18.1.el9_6.x86_64) 9.6 (Plow)' (0)")


def test_an_index_beyond_the_menu_is_stale_too(audit):
    out = audit("boot.saved_entry", rhel9(saved_entry="3"))
    assert out.status is Status.WARN and out.message.startswith("/boot/grub2/grubenv: saved_entry='3' names no menu")


def test_saved_entry_not_set_boots_the_first_entry(audit):
    out = audit("boot.saved_entry", rhel9())
    assert out.status is Status.PASS
    assert out.message == ("grub.cfg takes the default from grubenv saved_entry, which is not set: GRUB boots the "
                           "first entry")


def test_a_stale_one_shot_next_entry(audit):
    out = audit("boot.saved_entry", rhel9(saved_entry=trees.EL9_ENTRY, next_entry=GONE))
    assert out.status is Status.WARN
    assert f"next_entry='{GONE}' (grub-reboot's one-shot choice) names no menu entry" in out.message
    assert out.remediation.commands == ('grub2-editenv "$ROOT"/boot/grub2/grubenv unset next_entry',)


def test_rhel7_live_menuentry_is_set_with_grub2_set_default(audit):
    tree = rhel7_live(saved_entry=RHEL7_GONE)
    out = audit("boot.saved_entry", tree)
    assert out.status is Status.WARN
    assert out.message == (f"/boot/grub2/grubenv: saved_entry='{RHEL7_GONE}' names no menu entry: GRUB boots "
                           f"'{RHEL7_FIRST}' (menu position 0) instead")
    assert f"menuentry '{RHEL7_FIRST}' (id '{RHEL7_FIRST_ID}')" in observed(out)
    assert out.remediation.commands == (f"grub2-set-default {RHEL7_FIRST_ID}",)
    assert "matches no menu entry" not in audit("boot.params", tree).message


def test_debian_saved_default_inside_the_submenu_falls_back_to_its_first_entry(audit, make_root):
    gone = f"{DEBIAN_SUBMENU}>Debian GNU/Linux, with Linux 6.1.0-10-amd64"
    out = audit("boot.saved_entry", debian_saved(gone))
    assert out.status is Status.WARN
    assert out.message == (f"/boot/grub/grubenv: saved_entry='{gone}' names no menu entry: GRUB boots 'Debian "
                           "GNU/Linux, with Linux 6.1.0-13-amd64' (menu position 1>0) instead")
    assert out.remediation.commands == ("grub-editenv \"$ROOT\"/boot/grub/grubenv set saved_entry='1>0'",)
    live = debian_saved(gone)
    live.update(trees.live_tree(cmdline=f"BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-amd64 {trees.DEBIAN_ROOT} ro quiet",
                                release=trees.DEBIAN_RELEASE))
    out = run_check(CHECKS["boot.saved_entry"], Host.from_root(str(make_root(live))), DEFAULT_POLICY)
    assert out.remediation.commands == ("grub-set-default '1>0'",)


def test_debian_saved_default_that_exists(audit):
    out = audit("boot.saved_entry", debian_saved(f"{DEBIAN_SUBMENU}>Debian GNU/Linux, with Linux 6.1.0-13-amd64"))
    assert out.status is Status.PASS


def test_a_default_set_in_grub_cfg_leaves_saved_entry_unused(audit):
    tree = trees.debian12_tree("", "")  # set default="1>2": GRUB_DEFAULT is not "saved"
    tree["boot/grub/grubenv"] = trees.grubenv(saved_entry="gone")
    out = audit("boot.saved_entry", tree)
    assert out.status is Status.PASS
    assert out.message == ("/boot/grub/grub.cfg sets the default entry itself, not from grubenv: no saved entry to "
                           "go stale")


def test_a_literal_default_that_names_nothing_stays_a_boot_params_finding(audit):
    tree = trees.debian12_tree("", "")
    tree["boot/grub/grub.cfg"] = tree["boot/grub/grub.cfg"].replace('set default="1>2"', 'set default="nothing"')
    assert audit("boot.saved_entry", tree).status is Status.PASS
    params = audit("boot.params", tree)
    assert params.status is Status.WARN
    assert ("next boot: default entry 'nothing' matches no menu entry: GRUB falls back to the first entry"
            in params.message)


def test_an_image_not_generated_yet_passes(audit):
    tree = trees.debian12_tree()
    del tree["boot/grub/grub.cfg"]
    out = audit("boot.saved_entry", tree)
    assert out.status is Status.PASS and "not generated yet" in out.message


def test_no_boot_configuration_is_a_skip(audit):
    assert audit("boot.saved_entry", trees.live_tree()).status is Status.SKIP


def test_legacy_grub_keeps_no_grubenv(audit):
    out = audit("boot.saved_entry", trees.centos6_tree(live=False))
    assert out.status is Status.SKIP and out.message == "grub-legacy keeps no grubenv saved_entry"


def test_a_hostile_entry_id_is_quoted(audit):
    hostile = "x';touch pwned;'"
    tree = trees.debian12_tree("", "")
    text = tree["boot/grub/grub.cfg"]
    first_id = "'gnulinux-simple-3c1b3b7e-5d2a-4a57-9d0e-8f1c2b7a6e01'"
    assert first_id in text
    tree = debian_saved("gone", grub_cfg=text.replace(first_id, '"' + hostile + '"', 1))
    out = audit("boot.saved_entry", tree)
    assert out.status is Status.WARN
    (cmd,) = out.remediation.commands
    words = shlex.split(cmd)
    assert words[-1] == f"saved_entry={hostile}" and "touch" not in words and bash_n(cmd)
