"""The next boot of an image whose boot configuration is not generated yet: predicted from the
generators' inputs (real /etc/default/grub files from tests/data/grub), or unknown with the reason."""

from __future__ import annotations

import pytest

from audit.boot.model import effective_params
from audit.boot.resolver import resolve_boot_config
from audit.host.fs import RootFS
from audit.parsers.cmdline import tokenize
from tests.conftest import data

DEBIAN_DEFAULT = data("grub", "debian12-grub2-common-default-grub").read_text()
PROXMOX_DEFAULT = data("grub", "proxmox-kvm-host-etc-default-grub").read_text()
RHEL8_DEFAULT = data("grub", "rhel8-stig-etc-default-grub").read_text()
ROCKY_BLS = data("grub", "bls-rocky8.5-6fa25ca775f64accb0d3e53f0e4e6e92-5.16.9-custom.conf").read_text()
DEBIAN_OS = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
RHEL_OS = 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="8.9"\n'
KERNEL = {"boot/vmlinuz-6.1.0-28-amd64": "", "boot/vmlinuz-6.1.0-18-amd64": ""}


def tuned(default: str, cmdline: str) -> str:
    return default.replace('GRUB_CMDLINE_LINUX=""', f'GRUB_CMDLINE_LINUX="{cmdline}"')


def resolve(make_root, spec, *, predict=True):
    return resolve_boot_config(RootFS(str(make_root(spec))), predict=predict)


def keys(cfg) -> list[str]:
    params = effective_params(cfg)
    assert params is not None, cfg.summary
    return [p.name if p.value is None else f"{p.name}={p.value}" for p in params]


def test_debian_image_with_tuned_default_grub_is_predicted(make_root):
    cfg = resolve(make_root, {"etc/os-release": DEBIAN_OS, **KERNEL,
                              "etc/default/grub": tuned(DEBIAN_DEFAULT, "hugepagesz=2M hugepages=512 "
                                                                        "default_hugepagesz=2M intel_iommu=on")})
    assert cfg.predicted and cfg.loader == "grub2"
    # GRUB_CMDLINE_LINUX then GRUB_CMDLINE_LINUX_DEFAULT, as 10_linux writes the normal entry
    assert keys(cfg) == ["hugepagesz=2M", "hugepages=512", "default_hugepagesz=2M", "intel_iommu=on", "quiet"]
    assert cfg.summary.startswith("predicted: /boot/grub/grub.cfg not generated yet; grub-mkconfig will write it "
                                  "from /etc/default/grub")
    assert cfg.entry is not None and cfg.entry.kernel == "/boot/vmlinuz-6.1.0-28-amd64"  # the newest kernel
    assert any(e.source == "/etc/default/grub" and "line 10: GRUB_CMDLINE_LINUX=" in e.observed
               for e in cfg.provenance)
    # the backtick in GRUB_DISTRIBUTOR does not feed the command line: the prediction stands
    assert not any("GRUB_DISTRIBUTOR" in p for p in cfg.problems)
    assert cfg.family_hint is None and not cfg.stale


def test_debian_reads_grub_d_in_order_with_self_references(make_root):
    cfg = resolve(make_root, {
        "etc/os-release": DEBIAN_OS, **KERNEL, "etc/default/grub": DEBIAN_DEFAULT,
        "etc/default/grub.d/50-cloudimg-settings.cfg": 'GRUB_CMDLINE_LINUX_DEFAULT="console=tty1 console=ttyS0"\n',
        "etc/default/grub.d/90-kvm.cfg": 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX transparent_hugepage=madvise"\n',
        "etc/default/grub.d/README": "not a .cfg: not read\nGRUB_CMDLINE_LINUX=junk\n",
    })
    assert keys(cfg) == ["transparent_hugepage=madvise", "console=tty1", "console=ttyS0"]
    assert "/etc/default/grub.d/50-cloudimg-settings.cfg, /etc/default/grub.d/90-kvm.cfg" in cfg.summary


def test_rhel_family_ignores_grub_d(make_root):
    cfg = resolve(make_root, {
        "etc/os-release": RHEL_OS.replace('"8.9"', '"7.9"'), "boot/vmlinuz-3.10.0-1160.el7.x86_64": "",
        "etc/default/grub": 'GRUB_CMDLINE_LINUX="crashkernel=auto rhgb quiet"\n',
        "etc/default/grub.d/90-kvm.cfg": 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX intel_iommu=on"\n',
    })
    assert keys(cfg) == ["crashkernel=auto", "rhgb", "quiet"]
    assert cfg.summary.startswith("predicted: /boot/grub2/grub.cfg not generated yet; grub2-mkconfig")


def test_proxmox_default_grub_keeps_its_own_root_parameter(make_root):
    cfg = resolve(make_root, {"etc/debian_version": "12.5\n", **KERNEL, "etc/default/grub": PROXMOX_DEFAULT})
    assert keys(cfg) == ["root=ZFS=rpool/ROOT/pve-1", "boot=zfs", "intel_iommu=on", "quiet"]


@pytest.mark.parametrize(("extra", "named"), [
    pytest.param('if [ -e /etc/kvm ]; then\n  GRUB_CMDLINE_LINUX="intel_iommu=on"\nfi\n', "/etc/default/grub:@N@: 'if'",
                 id="if"),
    pytest.param(". /etc/default/grub.local\n", "/etc/default/grub:@N@: '.'", id="source"),
    pytest.param('GRUB_CMDLINE_LINUX="$(cat /etc/kvm-params)"\n', "GRUB_CMDLINE_LINUX (/etc/default/grub:@N@) is "
                 "built from a command substitution", id="command-substitution"),
    pytest.param('GRUB_CMDLINE_LINUX_DEFAULT="quiet `cat /x`"\n', "GRUB_CMDLINE_LINUX_DEFAULT", id="backticks"),
])
def test_shell_code_makes_the_prediction_unknown_naming_the_line(make_root, extra, named):
    base = DEBIAN_DEFAULT.replace("GRUB_DISABLE_OS_PROBER=true\n", "")
    named = named.replace("@N@", str(len(base.splitlines()) + 1))
    cfg = resolve(make_root, {"etc/os-release": DEBIAN_OS, **KERNEL, "etc/default/grub": base + extra})
    assert cfg.predicted and effective_params(cfg) is None
    assert "the boot parameters are unknown" in cfg.summary
    assert any(named in p for p in cfg.problems), cfg.problems


def test_no_kernel_in_the_image_means_no_entry_to_predict(make_root):
    cfg = resolve(make_root, {"etc/os-release": DEBIAN_OS, "etc/default/grub": DEBIAN_DEFAULT})
    assert effective_params(cfg) is None
    assert "no kernel image in /boot: grub-mkconfig would write no Linux entry" in cfg.summary


def test_no_inputs_at_all_stays_unknown(make_root):
    cfg = resolve(make_root, {"etc/os-release": DEBIAN_OS, **KERNEL})
    assert cfg.loader is None and not cfg.predicted and effective_params(cfg) is None
    assert "boot parameters unknown" in cfg.summary


def test_live_hosts_and_generated_configurations_are_never_predicted(make_root):
    spec = {"etc/os-release": DEBIAN_OS, **KERNEL, "etc/default/grub": tuned(DEBIAN_DEFAULT, "intel_iommu=on")}
    assert not resolve(make_root, spec, predict=False).predicted
    generated = resolve(make_root, {**spec, "boot/grub/grub.cfg": data("grub", "debian12-grub.cfg").read_text()})
    assert not generated.predicted and generated.config_path == "/boot/grub/grub.cfg"


def test_bls_image_takes_etc_kernel_cmdline(make_root):
    cfg = resolve(make_root, {"etc/os-release": RHEL_OS.replace('"8.9"', '"9.4"'), "etc/default/grub": RHEL8_DEFAULT,
                              "etc/kernel/cmdline": "root=UUID=1 ro intel_iommu=on hugepages=64\n"})
    assert cfg.predicted and cfg.loader == "grub2-bls"
    assert "intel_iommu=on" in keys(cfg)
    assert "kernel-install will write the options from /etc/kernel/cmdline" in cfg.summary


def test_bls_image_falls_back_to_usr_lib_kernel_cmdline(make_root):
    cfg = resolve(make_root, {"etc/os-release": RHEL_OS, "etc/default/grub": RHEL8_DEFAULT,
                              "usr/lib/kernel/cmdline": "intel_iommu=on\n"})
    assert keys(cfg) == ["intel_iommu=on"] and "/usr/lib/kernel/cmdline" in cfg.summary


def test_bls_image_without_a_cmdline_file_copies_the_build_host(make_root):
    cfg = resolve(make_root, {"etc/os-release": RHEL_OS, "etc/default/grub": RHEL8_DEFAULT})
    assert cfg.predicted and effective_params(cfg) is None
    assert "the /proc/cmdline of whatever system runs it (in a pipeline, the build host)" in cfg.summary


def test_rhel8_kernelopts_without_grubenv_is_what_grub2_mkconfig_will_store(make_root):
    cfg = resolve(make_root, {
        "etc/os-release": RHEL_OS, "etc/default/grub": RHEL8_DEFAULT, "boot/vmlinuz-5.16.9-custom": "",
        "boot/loader/entries/6fa25ca775f64accb0d3e53f0e4e6e92-5.16.9-custom.conf": ROCKY_BLS,
    })
    assert cfg.predicted and cfg.loader == "grub2-bls"
    assert keys(cfg) == [p.name if p.value is None else f"{p.name}={p.value}" for p in tokenize(
        "resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet fips=1 "
        "boot=UUID=f3f77ba4-ad96-4c72-956d-5ca8bc454c54 audit=1 audit_backlog_limit=8192 pti=on vsyscall=none "
        "page_poison=1 slub_debug=P")]
    assert "$kernelopts predicted" in cfg.summary
    # without the prediction (a live host), $kernelopts stays unknown
    live = resolve(make_root, {"etc/default/grub": RHEL8_DEFAULT, "boot/loader/entries/x.conf": ROCKY_BLS},
                   predict=False)
    assert effective_params(live) is None


def test_a_predicted_1g_pool_also_depends_on_the_cpu_the_image_boots_on(make_root):
    # issue #10 section 4: the generator's output is predicted, and so is whether the CPU has pdpe1gb
    from audit.engine import collect_checks, run_check
    from audit.host.core import Host
    from audit.model import Status
    from audit.plugins import make_plugins
    from audit.policy import DEFAULT_POLICY

    checks = {d.check.id: d.check for d in collect_checks(make_plugins(entry_points=False))[0]}
    pools = "hugepagesz=2M hugepages=512 hugepagesz=1G hugepages=8"
    root = make_root({"etc/os-release": DEBIAN_OS, **KERNEL, "etc/default/grub": tuned(DEBIAN_DEFAULT, pools)})
    out = run_check(checks["boot.hugepages"], Host.from_root(str(root)), DEFAULT_POLICY)
    assert out.status is Status.PASS
    assert out.message == ("reserved at boot: 512 x 2M, 8 x 1G (predicted: /boot/grub/grub.cfg not generated yet; the "
                           "1G pool needs a CPU with pdpe1gb, and the CPU it boots on is not known here; on a CPU "
                           "without it: 512 x 2M)")
