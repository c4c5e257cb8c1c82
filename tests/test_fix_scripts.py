"""Fix scripts converge: every remedy command family, run twice on a fake root, leaves the same files as
one run; an image's script has no runtime command, runs from outside the image with its root as the
only argument and refuses anything else; one round of a whole fix script leaves nothing it addressed.

Every script here runs confined (``tests/sandbox.py``): bubblewrap, the machine read-only, only the
fake root writable; tools that act on a running system or the network are stubs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audit.engine import run_audit
from audit.host.core import Host
from audit.model import Report, Status, TargetMode, replace
from audit.plugins import make_plugins
from audit.policy import DEFAULT_POLICY, Policy
from audit.remedy.cmdline import kernel_params
from audit.remedy.hugepages import boot_pools, mount_at_boot, mount_now, reserve_pool
from audit.remedy.ksm import ksm_off, ksm_on
from audit.remedy.packages import HUGEADM, install
from audit.remedy.system import dedupe_lines, persist_module, swap_file, unmask_unit, write_now
from audit.remedy.target import FixTarget
from reports import fix_script
from tests import trees
from tests.sandbox import run_image_script, run_live_script, script_of, twice

M, G = 1 << 20, 1 << 30
GATE_CHECKS = ("boot.*", "iommu.enabled", "memory.thp", "mounts.hugetlbfs", "packages.libhugetlbfs", "ksm.state")
BROKEN = "transparent_hugepage=never intel_iommu=off"
#: Commands that change a running system: never in an image's script.
RUNTIME = re.compile(r"> ?/(sys|proc)/|\bsysctl -w\b|(?<![\w.-])(modprobe|mount|swapon|update-grub|grub2?-mkconfig)\s"
                     r"|(?<![\w.-])(update-grub|grub2?-mkconfig)$|\bsystemctl (start|restart)\b|--now\b"
                     r"|\bservice \S+ start\b")


def runtime_commands(cmds: list[str]) -> list[str]:
    return [c for c in cmds if not c.lstrip().startswith("#") and RUNTIME.search(c)]


def target_of(root: Path) -> FixTarget:
    return FixTarget.of(Host.from_root(str(root)))


def read(root: Path, rel: str) -> str:
    return (root / rel).read_text()


def kernel_lines(grub_cfg: str) -> list[list[str]]:
    return [line.split()[2:] for line in grub_cfg.splitlines() if re.match(r"\s*linux\s", line)]


def audit_report(root: Path, policy: Policy = DEFAULT_POLICY) -> Report:
    return run_audit(make_plugins(entry_points=False), Host.from_root(str(root)), policy, select=GATE_CHECKS)


# -- every command family, twice, on an image ------------------------------------------------------


def _image_root(make_root, *, generated: bool, extra: dict | None = None) -> Path:
    tree = trees.debian12_tree(asked=BROKEN + " hugepagesz=2M hugepages=256", booted=BROKEN)
    if not generated:
        del tree["boot/grub/grub.cfg"]
    tree.update({"etc/fstab": "# /etc/fstab\nUUID=abc / ext4 defaults 0 1\n",
                 "etc/sysctl.d/80-hugepages.conf": "# pools\nvm.nr_hugepages=16\nvm.swappiness = 10\n",
                 **trees.ksmtuned_unit("lib/systemd/system"), **(extra or {})})
    return make_root(tree)


@pytest.mark.parametrize("generated", [True, False], ids=["grub.cfg", "no-grub.cfg"])
def test_kernel_parameters_are_replaced_never_repeated_on_an_image(make_root, tmp_path, generated):
    root = _image_root(make_root, generated=generated)
    target = target_of(root)
    assert target.image and target.generated is generated
    cmds = [*kernel_params(target, add={"transparent_hugepage": "madvise"}, topic="thp"),
            *kernel_params(target, add={"intel_iommu": "on", "iommu": "pt"}, remove=["intel_iommu"], topic="iommu"),
            *boot_pools(target, {2 * M: 256, G: 4})]
    assert runtime_commands(cmds) == []
    once, again, _ = twice(lambda: run_image_script(root, script_of(cmds, image=True), tmp_path), root)
    assert once == again
    grub = read(root, "etc/default/grub")
    assert 'GRUB_CMDLINE_LINUX=""' in grub  # every parameter the fixes set is off the input line
    snippets = {p.name: p.read_text() for p in (root / "etc/default/grub.d").glob("90-hostaudit-*.cfg")}
    assert snippets == {
        "90-hostaudit-thp.cfg": 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX transparent_hugepage=madvise"\n',
        "90-hostaudit-iommu.cfg": 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX intel_iommu=on iommu=pt"\n',
        "90-hostaudit-hugepages.cfg": 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX hugepagesz=2M hugepages=256 '
                                      'hugepagesz=1G hugepages=4"\n'}
    if generated:  # edited in place: each parameter once on every kernel line, the pairs in order
        for args in kernel_lines(read(root, "boot/grub/grub.cfg")):
            assert args.count("transparent_hugepage=madvise") == 1 and "transparent_hugepage=never" not in args
            assert args.count("intel_iommu=on") == 1 and "intel_iommu=off" not in args
            pools = [a for a in args if a.startswith("hugepage")]
            assert pools == ["hugepagesz=2M", "hugepages=256", "hugepagesz=1G", "hugepages=4"]
    else:
        assert not (root / "boot/grub/grub.cfg").exists()  # nothing generated from outside the image


def test_files_units_and_packages_converge_on_an_image(make_root, tmp_path):
    root = _image_root(make_root, generated=True, extra={
        "etc/fstab": "UUID=abc / ext4 defaults 0 1\nhugetlbfs /dev/hugepages hugetlbfs pagesize=2M 0 0\n"
                     "hugetlbfs /dev/hugepages hugetlbfs pagesize=2M 0 0\n",
        "etc/systemd/system/dev-hugepages.mount": trees.Link("/dev/null")})
    target = target_of(root)
    cmds = [*reserve_pool(target, 2 * M, 512, default_size=2 * M)[0],
            *mount_at_boot(target, [G], default_size=2 * M), *mount_now(target, [G], default_size=2 * M),
            *dedupe_lines(target, "/etc/fstab"), *unmask_unit(target, "dev-hugepages.mount"),
            *persist_module(target, "kvm_intel"), *install(target, HUGEADM), *ksm_on(target),
            *ksm_off(target, ["ksmtuned.service"]), *ksm_on(target, masked=("ksm.service", "ksmtuned.service")),
            *swap_file(target, "/swapfile-ksm", G)]
    assert runtime_commands(cmds) == []
    once, again, _ = twice(lambda: run_image_script(root, script_of(cmds, image=True), tmp_path), root)
    assert once == again
    assert read(root, "etc/sysctl.d/80-hugepages.conf") == "# pools\nvm.swappiness = 10\nvm.nr_hugepages = 512\n"
    fstab = read(root, "etc/fstab").splitlines()
    assert fstab.count("hugetlbfs /dev/hugepages hugetlbfs pagesize=2M 0 0") == 1
    assert fstab.count("hugetlbfs /dev/hugepages1G hugetlbfs pagesize=1G 0 0") == 1
    assert fstab.count("/swapfile-ksm none swap defaults 0 0") == 1
    assert read(root, "etc/modules-load.d/kvm_intel.conf") == "kvm_intel\n"
    assert not (root / "etc/systemd/system/dev-hugepages.mount").is_symlink()
    assert (root / "etc/systemd/system/multi-user.target.wants/ksmtuned.service").is_symlink()
    assert read(root, "var/lib/hostaudit-stub/log").splitlines() == ["install libhugetlbfs-bin", "install ksmtuned"]
    assert not (root / "usr/sbin/policy-rc.d").exists()  # the script's own, removed when it ends
    assert (root / "swapfile-ksm").stat().st_size == G


def test_image_scripts_refuse_anything_but_an_image_root(make_root, tmp_path):
    root = _image_root(make_root, generated=True)
    script = script_of(["echo ran > \"$ROOT\"/ran"], image=True)
    (tmp_path / "to-slash").symlink_to("/")
    (tmp_path / "no-etc").mkdir()
    for args in ([], ["/"], [str(tmp_path / "to-slash")], [f"{root}/../../../../../../../.."], [str(root / "nope")],
                 [str(tmp_path / "no-etc")], [str(root), str(root)]):
        run = run_image_script(root, script, tmp_path, args=args)
        assert run.returncode == 2, (args, run.stderr)
        assert not (root / "ran").exists()
    assert run_image_script(root, script, tmp_path).returncode == 0
    assert read(root, "ran") == "ran\n"


# -- the same families on a running host (the fake root is /) ----------------------------------------


def test_command_families_converge_on_a_live_host(make_root, tmp_path):
    tree = trees.debian12_live(BROKEN)
    tree.update({"etc/default/grub.d/90-hostaudit.cfg": 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX '
                                                        'transparent_hugepage=never"\n',  # an older hostaudit's
                 "etc/fstab": "UUID=abc / ext4 defaults 0 1\n"})
    root = make_root(tree)
    target = target_of(root)
    assert not target.image and target.now
    cmds = [*kernel_params(target, add={"transparent_hugepage": "madvise"}, topic="thp"),
            *kernel_params(target, add={"intel_iommu": "on", "iommu": "pt"}, remove=["intel_iommu"], topic="iommu"),
            *reserve_pool(target, G, 4, default_size=2 * M, keep={2 * M: 256})[0],
            *reserve_pool(target, 2 * M, 512, default_size=2 * M)[0],
            *mount_now(target, [G], default_size=2 * M), *mount_at_boot(target, [G], default_size=2 * M),
            *persist_module(target, "kvm_intel"), *install(target, HUGEADM), *ksm_on(target),
            write_now("/sys/kernel/mm/transparent_hugepage/enabled", "madvise")]
    assert "update-grub" in cmds and any(c.startswith("systemctl enable --now") for c in cmds)
    once, again, _ = twice(lambda: run_live_script(root, script_of(cmds, image=False), tmp_path), root)
    assert once == again
    assert "transparent_hugepage" not in read(root, "etc/default/grub.d/90-hostaudit.cfg")
    assert read(root, "etc/default/grub.d/90-hostaudit-hugepages.cfg").count("hugepagesz=") == 2
    assert read(root, "var/lib/hostaudit-stub/log").splitlines() == [
        "mount /dev/hugepages1G", "install libhugetlbfs-bin", "install ksmtuned"]
    assert read(root, "sys/kernel/mm/transparent_hugepage/enabled") == "madvise\n"


def test_a_live_script_regenerates_once_after_every_input_changed(make_root, tmp_path):
    root = make_root(trees.debian12_live(BROKEN, thp="always madvise [never]"))
    report = audit_report(root)
    text = fix_script.render(report, exit_code=1)
    code = [line for line in text.splitlines() if line and not line.startswith("#")]
    last_section = max(i for i, line in enumerate(code) if line.startswith("printf '==> %s\\n' '["))
    assert code.count("update-grub") == 1 and code.index("update-grub") > last_section
    once, again, _ = twice(lambda: run_live_script(root, text, tmp_path), root)
    assert once == again
    inputs = read(root, "etc/default/grub") + "".join(
        p.read_text() for p in sorted((root / "etc/default/grub.d").glob("*.cfg")))
    assert read(root, "var/lib/hostaudit-stub/regenerated-from") == inputs  # update-grub saw every change


# -- whole scripts: one round converges --------------------------------------------------------------


def _broken_image(make_root, *, generated: bool) -> Path:
    tree = trees.debian12_tree(asked=BROKEN, booted=BROKEN)
    if not generated:
        del tree["boot/grub/grub.cfg"]
    return make_root(tree)


@pytest.mark.parametrize("size", [None, G], ids=["default-policy", "1G-policy"])
@pytest.mark.parametrize("generated", [True, False], ids=["grub.cfg", "no-grub.cfg"])
def test_one_round_of_an_image_script_converges(make_root, tmp_path, generated, size):
    policy = replace(DEFAULT_POLICY, hugepages_size=size, hugepages_count=4 if size else None)
    root = _broken_image(make_root, generated=generated)
    before = audit_report(root, policy)
    failed = {r.id for r in before.results if r.status is Status.FAIL}
    assert {"boot.hugepages", "iommu.enabled", "memory.thp", "packages.libhugetlbfs", "ksm.state"} <= failed
    text = fix_script.render(before, exit_code=1)
    code = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert runtime_commands(code) == []
    once, again, _ = twice(lambda: run_image_script(root, text, tmp_path), root)
    assert once == again
    after = audit_report(root, policy)
    assert [(r.id, r.outcome.message) for r in after.results if r.status is Status.FAIL] == []
    assert [(r.id, r.outcome.message) for r in after.results if r.status is Status.WARN] == []
    if size:
        assert "hugetlbfs /dev/hugepages1G hugetlbfs pagesize=1G 0 0" in read(root, "etc/fstab").splitlines()


def test_a_stale_grub_cfg_with_a_1g_policy_keeps_the_inputs_pools(make_root, tmp_path):
    """/etc/default/grub asks for 2M pages the generated grub.cfg lacks, the policy wants 4 x 1G: one
    round writes both pools (regenerating alone would bring back only the 2M pool)."""
    tree = trees.debian12_tree(asked=BROKEN + " hugepagesz=2M hugepages=512", booted=BROKEN)
    root = make_root(tree)
    policy = replace(DEFAULT_POLICY, hugepages_size=G, hugepages_count=4)
    before = audit_report(root, policy)
    text = fix_script.render(before, exit_code=1)
    once, again, _ = twice(lambda: run_image_script(root, text, tmp_path), root)
    assert once == again
    after = audit_report(root, policy)
    assert [(r.id, r.outcome.message) for r in after.results if r.status is not Status.PASS] == []
    for args in kernel_lines(read(root, "boot/grub/grub.cfg")):
        assert [a for a in args if a.startswith("hugepage")] == ["hugepagesz=2M", "hugepages=512", "hugepagesz=1G",
                                                                 "hugepages=4"]


def test_image_scripts_carry_no_runtime_command(make_root):
    for tree in (trees.debian12_tree(asked=BROKEN, booted=BROKEN), trees.rhel9_tree(),
                 trees.centos6_tree(live=False, params="iommu=off"), trees.ksm_running(trees.debian12_tree())):
        report = audit_report(make_root(tree), replace(DEFAULT_POLICY, hugepages_size=G,
                                                                   hugepages_count=2))
        assert report.target.mode is TargetMode.IMAGE
        text = fix_script.render(report, exit_code=1)
        assert fix_script.image_form(report)
        code = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        assert runtime_commands(code) == []
        guard = code.index('ROOT="$(cd -- "$1" && pwd -P)"')
        sections = [i for i, line in enumerate(code) if line.startswith("printf '==> %s")]
        assert not sections or guard < sections[0]
        for line in code[sections[0]:] if sections else ():
            assert '"$ROOT"' in line or line.startswith(("printf '==> ", "echo 'hostaudit: ")), line


def test_the_text_report_shows_an_images_commands_under_its_root(make_root):
    from reports import text_report

    root = _broken_image(make_root, generated=False)
    text = text_report.render(audit_report(root), exit_code=1)
    what = text.split("What to fix:\n", 1)[1].splitlines()
    assert what[0] == (f'(image commands: "$ROOT" is the image root, here ROOT={root}; --fix-script writes them as a '
                       "script that takes the root as its only argument)")
    assert "    $ mkdir -p \"$ROOT\"/etc/default/grub.d" in what
