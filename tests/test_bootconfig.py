"""The boot configuration resolver on fake host roots built from real samples (tests/data/grub/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.boot.model import BootConfig, StaleParam, effective_params, suspicious_params
from audit.boot.resolver import resolve_boot_config
from audit.host.fs import RootFS
from audit.parsers.cmdline import last, tokenize
from audit.parsers.hugepages import hugepage_request
from tests.conftest import Dir, Link

DATA = Path(__file__).parent / "data" / "grub"
MID = "6fa25ca775f64accb0d3e53f0e4e6e92"
ROCKY = f"{MID}-5.16.9-custom"
OLD = f"{MID}-4.18.0-348.el8.x86_64"
RESCUE = f"{MID}-0-rescue"
DEB_UUID = "3c1b3b7e-5d2a-4a57-9d0e-8f1c2b7a6e01"
M, G = 1 << 20, 1 << 30


def grubenv(**values: str) -> str:
    body = "# GRUB Environment Block\n" + "".join(f"{k}={v}\n" for k, v in values.items())
    return body + "#" * (1024 - len(body.encode()))


def bls(version: str, options: str, *, title: str | None = None) -> str:
    return (
        f"title {title or f'Rocky Linux ({version}) 8.5 (Green Obsidian)'}\n"
        f"version {version}\n"
        f"linux /vmlinuz-{version}\n"
        f"initrd /initramfs-{version}.img $tuned_initrd\n"
        f"options {options}\n"
        f"id rocky-20211114-{version}\n"
        "grub_users $grub_users\n"
        "grub_arg --unrestricted\n"
        "grub_class kernel\n"
    )


def el_tree(**overrides: object) -> dict[str, object]:
    """RHEL 9-style layout: ESP stub -> /boot/grub2/grub.cfg (blscfg, guarded kernelopts) ->
    BLS entries (the real Rocky sample among them), grubenv, the real STIG /etc/default/grub."""
    tree: dict[str, object] = {
        "boot/efi/EFI/redhat/grub.cfg": DATA / "el9-efi-stub-grub.cfg",
        "boot/efi/EFI/redhat/shimx64.efi": "",
        "boot/efi/EFI/redhat/grubx64.efi": "",
        "boot/efi/EFI/BOOT/BOOTX64.EFI": "",
        "boot/grub2/grub.cfg": DATA / "el8-bls-grub.cfg",
        "boot/grub2/grubenv": DATA / "el8-grubenv",
        f"boot/loader/entries/{ROCKY}.conf": DATA / f"bls-rocky8.5-{ROCKY}.conf",
        f"boot/loader/entries/{OLD}.conf": bls("4.18.0-348.el8.x86_64", "$kernelopts $tuned_params"),
        f"boot/loader/entries/{RESCUE}.conf": bls(
            f"0-rescue-{MID}", "$kernelopts", title=f"Rocky Linux (0-rescue-{MID}) 8.5 (Green Obsidian)"
        ),
        "etc/default/grub": DATA / "rhel8-stig-etc-default-grub",
    }
    for key, value in overrides.items():
        path = key.replace("__", "/")
        if value is None:
            tree.pop(path, None)
        else:
            tree[path] = value
    return tree


def resolve(make_root, spec, efi=None) -> BootConfig:
    return resolve_boot_config(RootFS(str(make_root(spec))), efi=efi)


def debian_default_grub(**replace: str) -> str:
    text = (DATA / "debian12-grub2-common-default-grub").read_text()
    text = text.replace("GRUB_DEFAULT=0", 'GRUB_DEFAULT="1>2"')
    text = text.replace(
        'GRUB_CMDLINE_LINUX_DEFAULT="quiet"', 'GRUB_CMDLINE_LINUX_DEFAULT="quiet hugepagesz=1G hugepages=16"'
    )
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def debian_tree(**extra: object) -> dict[str, object]:
    tree: dict[str, object] = {
        "boot/grub/grub.cfg": DATA / "debian12-grub.cfg",
        "boot/efi/EFI/debian/grub.cfg": DATA / "debian12-efi-stub-grub.cfg",
        "boot/efi/EFI/debian/shimx64.efi": "",
        "etc/default/grub": debian_default_grub(),
        "etc/default/grub.d/50-kvm.cfg": 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX intel_iommu=on iommu=pt"\n',
        "usr/sbin/update-grub": "#!/bin/sh\n",
    }
    tree.update(extra)
    return tree


# -- RHEL/Rocky with an EFI stub and BLS entries ---------------------------------------------------------


@pytest.mark.parametrize("efi", [True, False, None])
def test_efi_stub_is_followed_to_bls_entries_whatever_the_firmware_flag(make_root, efi):
    # field bugs #1 (insights #4159: stub grub.cfg in the ESP) and #2 (EFI flag flipped the result)
    cfg = resolve(make_root, el_tree(), efi=efi)
    assert cfg.loader == "grub2-bls"
    assert cfg.config_path == "/boot/grub2/grub.cfg"
    assert cfg.entry is not None and cfg.entry.entry_id == ROCKY
    assert cfg.entry.title == "Rocky Linux (5.16.9-custom) 8.5 (Green Obsidian)"
    assert cfg.entry.kind == "bls" and cfg.entry.version == "5.16.9-custom"
    assert cfg.entry.options == "$kernelopts $tuned_params"
    assert cfg.entry.cmdline == (
        "root=/dev/mapper/rl-root ro crashkernel=auto resume=/dev/mapper/rl-swap rd.lvm.lv=rl/root "
        "rd.lvm.lv=rl/swap rhgb quiet hugepagesz=1G hugepages=8"
    )
    params = effective_params(cfg)
    assert params is not None and last(params, "hugepages") == "8"
    assert hugepage_request(params, 2 * M).pools == {G: 8}
    assert cfg.family_hint == "grubby"
    assert cfg.firmware == ("bios" if efi is False else "efi")
    sources = [e.source for e in cfg.provenance]
    assert "/boot/grub2/grubenv" in sources and f"/boot/loader/entries/{ROCKY}.conf" in sources
    if efi is not False:
        assert any(
            "configfile" in e.observed and "/boot/grub2/grub.cfg" in e.observed for e in cfg.provenance
        )
    assert cfg.summary.startswith(
        "default entry 'Rocky Linux (5.16.9-custom) 8.5 (Green Obsidian)' "
        f"from /boot/loader/entries/{ROCKY}.conf"
    )
    assert "options expanded from /boot/grub2/grubenv ($kernelopts)" in cfg.summary


def test_efi_none_says_the_chains_agree(make_root):
    cfg = resolve(make_root, el_tree())
    assert "chains agree" in cfg.summary


def test_undefined_tuned_params_expands_to_nothing(make_root):
    # field bug #5 (tuned #704): no literal "$", no crash, reported
    cfg = resolve(make_root, el_tree())
    assert cfg.unresolved == ("tuned_params",)
    assert not any("$" in p.name or "$" in (p.value or "") for p in cfg.params)
    assert any("$tuned_params is not defined anywhere" in p for p in cfg.problems)
    assert effective_params(cfg) is not None  # harmless: tuned's variables may be undefined


def test_kernelopts_from_guarded_fallback_when_grubenv_lacks_it(make_root):
    # field bug #3 (b): grubenv without kernelopts => the guarded "set kernelopts=" in grub.cfg
    cfg = resolve(make_root, el_tree(boot__grub2__grubenv=grubenv(saved_entry=ROCKY)))
    assert cfg.entry.cmdline.startswith("root=/dev/mapper/rl-root ro crashkernel=auto")
    assert "hugepages" not in cfg.entry.cmdline
    assert "options expanded from /boot/grub2/grub.cfg ($kernelopts)" in cfg.summary
    assert any(e.source == "/boot/grub2/grub.cfg" and "kernelopts=" in e.observed for e in cfg.provenance)


def test_kernelopts_defined_nowhere_is_unknown_never_literal(make_root):
    # field bugs #3 (c) and #6 (u-root #1835): never boot with the literal text
    grub_cfg = (DATA / "el8-bls-grub.cfg").read_text()
    no_fallback = grub_cfg.replace('if [ -z "${kernelopts}" ]; then', "if false; then")
    cfg = resolve(
        make_root,
        el_tree(boot__grub2__grubenv=grubenv(saved_entry=ROCKY), **{"boot__grub2__grub.cfg": no_fallback}),
    )
    assert cfg.entry is not None and "$" not in cfg.entry.cmdline
    assert "kernelopts" in cfg.unresolved
    assert effective_params(cfg) is None
    assert cfg.summary.endswith("boot parameters unknown")
    assert any("$kernelopts is not defined" in p for p in cfg.problems)


def test_args_appended_by_grubby_after_kernelopts(make_root):
    # field bug #4: after "grubby --args", the parameters live in the entry, not in grubenv
    entry = bls("5.16.9-custom", "$kernelopts $tuned_params hugepagesz=2M hugepages=1024 intel_iommu=on")
    cfg = resolve(make_root, el_tree(**{f"boot__loader__entries__{ROCKY}.conf": entry}))
    params = effective_params(cfg)
    assert last(params, "intel_iommu") == "on"
    assert hugepage_request(params, 2 * M).pools == {G: 8, 2 * M: 1024}


def test_saved_entry_is_a_bls_id_and_numbers_index_grubs_sorted_order(make_root):
    # field bug #9 (anaconda #1790)
    cfg = resolve(
        make_root, el_tree(boot__grub2__grubenv=grubenv(saved_entry=OLD, kernelopts="root=/dev/sda2 ro"))
    )
    assert cfg.entry.entry_id == OLD and cfg.entry.index == "1"
    cfg = resolve(
        make_root, el_tree(boot__grub2__grubenv=grubenv(saved_entry="2", kernelopts="root=/dev/sda2 ro"))
    )
    assert cfg.entry.entry_id == RESCUE and cfg.entry.recovery  # newest first, rescue last
    cfg = resolve(make_root, el_tree(boot__grub2__grubenv=grubenv(kernelopts="root=/dev/sda2 ro")))
    assert cfg.entry.entry_id == ROCKY  # no default: the first of the sorted list, not the last file


def test_one_shot_next_entry(make_root):
    env = grubenv(saved_entry=ROCKY, next_entry=OLD, kernelopts="root=/dev/sda2 ro")
    cfg = resolve(make_root, el_tree(boot__grub2__grubenv=env))
    assert cfg.entry.entry_id == OLD
    assert any("one-shot" in e.observed for e in cfg.provenance)


def test_saved_entry_naming_a_removed_kernel_falls_back_to_the_first(make_root):
    env = grubenv(saved_entry=f"{MID}-4.18.0-80.el8.x86_64", kernelopts="root=/dev/sda2 ro")
    cfg = resolve(make_root, el_tree(boot__grub2__grubenv=env))
    assert cfg.entry.entry_id == ROCKY
    assert any("matches no menu entry" in p for p in cfg.problems)


def test_corrupt_grubenv_is_reported_and_other_sources_still_used(make_root):
    # field bug #21: grub2-editenv "invalid environment block"
    cfg = resolve(make_root, el_tree(boot__grub2__grubenv=b"\0" * 1024))
    assert any("/boot/grub2/grubenv" in p and "invalid environment block" in p for p in cfg.problems)
    assert cfg.entry.entry_id == ROCKY  # default unset -> first sorted entry
    assert cfg.entry.cmdline.startswith("root=/dev/mapper/rl-root ro crashkernel=auto")  # grub.cfg fallback
    assert effective_params(cfg) is not None


def test_bls_only_grub_cfg_without_menuentries(make_root):
    # field bug #12 (inspec #5306): CentOS 8 grub.cfg has no menuentry at all
    cfg = resolve(make_root, el_tree())
    text = (DATA / "el8-bls-grub.cfg").read_text()
    assert not any(line.lstrip().startswith(("menuentry ", "submenu ")) for line in text.splitlines())
    assert cfg.entry is not None and cfg.loader == "grub2-bls"


def test_regeneration_inputs_do_not_replace_the_effective_entry(make_root):
    # field bug #15 (community.sap_install #148): /etc/default/grub edited, BLS entries unchanged
    default_grub = (
        'GRUB_CMDLINE_LINUX="root=/dev/mapper/rl-root ro transparent_hugepage=never"\n'
        "GRUB_ENABLE_BLSCFG=true\n"
    )
    cfg = resolve(make_root, el_tree(etc__default__grub=default_grub))
    assert last(effective_params(cfg), "transparent_hugepage") is None
    assert StaleParam("transparent_hugepage", "never", None, "/etc/default/grub:1") in cfg.stale
    (inp,) = cfg.inputs
    assert inp.name == "GRUB_CMDLINE_LINUX" and inp.applies and "grubby" in inp.note
    assert cfg.family_hint == "grubby"


def test_stig_default_grub_drift_and_crlf(make_root):
    cfg = resolve(make_root, el_tree())
    names = {s.name for s in cfg.stale}
    assert {"fips", "audit", "pti", "slub_debug"} <= names
    assert (
        StaleParam("rd.lvm.lv", "rhel/root rhel/swap", "rl/root rl/swap", "/etc/default/grub:6") in cfg.stale
    )
    assert any("CRLF" in p for p in cfg.problems)


def test_three_way_drift_with_kernel_cmdline(make_root):
    # field bug #16 (osbuild #823): /etc/kernel/cmdline vs GRUB_CMDLINE_LINUX vs the entries
    literal = bls("5.16.9-custom", "root=/dev/mapper/rl-root ro hugepages=8")
    cfg = resolve(
        make_root,
        el_tree(
            **{f"boot__loader__entries__{ROCKY}.conf": literal},
            etc__default__grub='GRUB_CMDLINE_LINUX="root=/dev/mapper/rl-root ro hugepages=16"\n',
            etc__kernel__cmdline="root=/dev/mapper/rl-root ro hugepages=32\n",
        ),
    )
    assert sorted(cfg.stale) == sorted(
        [
            StaleParam("hugepages", "16", "8", "/etc/default/grub:1"),
            StaleParam("hugepages", "32", "8", "/etc/kernel/cmdline:1"),
        ]
    )
    by_name = {i.name: i for i in cfg.inputs}
    assert by_name["/etc/kernel/cmdline"].applies and "kernel-install" in by_name["/etc/kernel/cmdline"].note


def test_tuned_near_miss_from_grubenv(make_root):
    # field bug #18: insights' grubenv fixture has tuned_params=transparent_hugepages=never
    env = grubenv(
        saved_entry=ROCKY, kernelopts="root=/dev/sda2 ro", tuned_params="transparent_hugepages=never"
    )
    cfg = resolve(
        make_root,
        el_tree(
            boot__grub2__grubenv=env,
            etc__tuned__bootcmdline='TUNED_BOOT_CMDLINE="transparent_hugepage=never"\n',
        ),
    )
    assert last(effective_params(cfg), "transparent_hugepages") == "never"
    assert any("did you mean 'transparent_hugepage'" in p for p in cfg.problems)
    tuned = next(i for i in cfg.inputs if i.name == "TUNED_BOOT_CMDLINE")
    assert tuned.applies
    assert StaleParam("transparent_hugepage", "never", None, "/etc/tuned/bootcmdline:1") in cfg.stale


def test_blank_line_in_bls_entry_stops_grub(make_root):
    # field bug #7: blank lines and valueless keys are parsed; GRUB's blscfg stops at them
    entry = (
        "# hand edited\ntitle Rocky custom\nversion 5.16.9-custom\nlinux /vmlinuz-5.16.9-custom\n"
        "\noptions root=/dev/sda2 ro\ngrub_arg\n"
    )
    cfg = resolve(make_root, el_tree(**{f"boot__loader__entries__{ROCKY}.conf": entry}))
    assert cfg.entry.title == "Rocky custom"
    assert any(f"{ROCKY}.conf:5" in p and "stops reading" in p for p in cfg.problems)
    assert cfg.entry.options == "$default_kernelopts"
    assert effective_params(cfg) is None  # the options GRUB would use are undefined


def test_several_options_lines_grub_takes_the_first(make_root):
    entry = bls("5.16.9-custom", "$kernelopts") + "options hugepages=64\n"
    cfg = resolve(make_root, el_tree(**{f"boot__loader__entries__{ROCKY}.conf": entry}))
    assert "hugepages=64" not in cfg.entry.cmdline
    assert any("2 options lines" in p for p in cfg.problems)


def test_missing_real_config_behind_the_stub(make_root):
    # leapp #1261: EL8 -> 9 upgrade on EFI leaves the stub pointing at a missing /boot/grub2/grub.cfg
    spec = el_tree(**{"boot__grub2__grub.cfg": None})
    cfg = resolve(make_root, spec, efi=True)
    assert cfg.loader == "grub2" and cfg.entry is None
    assert effective_params(cfg) is None
    assert any("does not exist" in p for p in cfg.problems)
    cfg = resolve(make_root, spec, efi=None)  # the BIOS view still finds the BLS entries...
    assert cfg.firmware == "bios" and cfg.entry.entry_id == ROCKY
    assert any(p.startswith("EFI chain:") and "does not exist" in p for p in cfg.problems)  # ...and says why


def test_bls_entries_without_any_grub_cfg(make_root):
    spec = el_tree(**{"boot__grub2__grub.cfg": None, "boot__efi__EFI__redhat__grub.cfg": None})
    cfg = resolve(make_root, spec)
    assert cfg.loader == "grub2-bls" and cfg.entry.entry_id == ROCKY
    assert "hugepages=8" in cfg.entry.cmdline  # kernelopts from grubenv
    assert any("without any grub.cfg" in p for p in cfg.problems)


# -- other vendors, Debian and RHEL 7 -----------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["centos", "debian", "almalinux", "opensuse"])
def test_any_esp_vendor_directory(make_root, vendor):
    # field bug #14 (tuned #81): EFI/redhat must not be hard-coded
    spec = {
        f"boot/efi/EFI/{vendor}/grub.cfg": DATA / "rhel72-grub.cfg",
        f"boot/efi/EFI/{vendor}/grubenv": grubenv(
            saved_entry="Red Hat Enterprise Linux Server (3.10.0-327.el7.x86_64) 7.2 (Maipo)"
        ),
    }
    cfg = resolve(make_root, spec, efi=True)
    assert cfg.config_path == f"/boot/efi/EFI/{vendor}/grub.cfg"
    assert cfg.entry.kernel == "/vmlinuz-3.10.0-327.el7.x86_64"
    assert cfg.family_hint == f"grub2-mkconfig -o /boot/efi/EFI/{vendor}/grub.cfg"


def test_leftover_vendor_directory_after_conversion(make_root):
    # convert2rhel #1444: EFI/centos stays behind next to EFI/redhat
    spec = el_tree(**{"boot__efi__EFI__centos__grub.cfg": DATA / "rhel72-grub.cfg"})
    cfg = resolve(make_root, spec, efi=True)
    assert cfg.entry.entry_id == ROCKY  # the directory with a shim/grub binary wins
    spec["boot/efi/EFI/centos/shimx64.efi"] = ""
    cfg = resolve(make_root, spec, efi=True)
    assert any("several EFI GRUB configurations" in p for p in cfg.problems)


def test_rhel72_saved_entry_title_not_the_last_entry(make_root):
    # field bug #8 (inspec #2333): set default="${saved_entry}" with a title in grubenv
    title = "Red Hat Enterprise Linux Server (3.10.0-327.el7.x86_64) 7.2 (Maipo)"
    spec = {"boot/grub2/grub.cfg": DATA / "rhel72-grub.cfg", "boot/grub2/grubenv": grubenv(saved_entry=title)}
    cfg = resolve(make_root, spec, efi=False)
    assert cfg.loader == "grub2"
    assert cfg.entry.title == title and cfg.entry.index == "1"
    assert cfg.entry.kernel == "/vmlinuz-3.10.0-327.el7.x86_64"
    assert cfg.entry.cmdline.endswith("rhgb quiet LANG=en_US.UTF-8")
    assert not cfg.entry.recovery
    assert any("saved_entry" in e.observed and "/boot/grub2/grubenv:2" in e.observed for e in cfg.provenance)
    assert cfg.family_hint == "grub2-mkconfig -o /boot/grub2/grub.cfg"


def test_rhel72_id_matches_the_first_entry_with_that_id(make_root):
    spec = {
        "boot/grub2/grub.cfg": DATA / "rhel72-grub.cfg",
        "boot/grub2/grubenv": grubenv(
            saved_entry="gnulinux-3.10.0-327.el7.x86_64-advanced-91b16928-66bf-4801-8aed-fab3f1a6876c"
        ),
    }
    cfg = resolve(make_root, spec)
    assert cfg.entry.index == "0" and cfg.entry.kernel.endswith(".debug")


def test_debian_submenu_default_and_stale_config(make_root):
    # field bug #10: submenu + GRUB_DEFAULT="1>2"; /etc/default/grub edited, update-grub not run
    cfg = resolve(make_root, debian_tree())
    assert cfg.loader == "grub2" and cfg.config_path == "/boot/grub/grub.cfg"
    assert cfg.entry.index == "1>2"
    assert cfg.entry.title == "Debian GNU/Linux, with Linux 6.1.0-12-amd64"
    assert cfg.entry.cmdline == f"root=UUID={DEB_UUID} ro quiet"
    assert cfg.family_hint == "update-grub"
    assert set(cfg.stale) == {
        StaleParam("hugepagesz", "1G", None, "/etc/default/grub:9"),
        StaleParam("hugepages", "16", None, "/etc/default/grub:9"),
        StaleParam("intel_iommu", "on", None, "/etc/default/grub:10, /etc/default/grub.d/50-kvm.cfg:1"),
        StaleParam("iommu", "pt", None, "/etc/default/grub:10, /etc/default/grub.d/50-kvm.cfg:1"),
    }
    assert hugepage_request(effective_params(cfg), 2 * M).pools == {}


def test_debian_regenerated_config_is_not_stale(make_root):
    fresh = (
        (DATA / "debian12-grub.cfg")
        .read_text()
        .replace("ro  quiet", "ro intel_iommu=on iommu=pt quiet hugepagesz=1G hugepages=16")
    )
    cfg = resolve(make_root, debian_tree(**{"boot/grub/grub.cfg": fresh}))
    assert cfg.stale == ()
    assert hugepage_request(effective_params(cfg), 2 * M).pools == {G: 16}


def test_debian_recovery_entry_does_not_get_cmdline_linux_default(make_root):
    path = f"gnulinux-advanced-{DEB_UUID}>gnulinux-6.1.0-13-amd64-recovery-{DEB_UUID}"
    cfg = resolve(make_root, debian_tree(**{"boot/grub/grubenv": grubenv(next_entry=path)}))
    assert cfg.entry.recovery and cfg.entry.index == "1>1"
    assert {s.name for s in cfg.stale} == {"intel_iommu", "iommu"}
    dflt = next(i for i in cfg.inputs if i.name == "GRUB_CMDLINE_LINUX_DEFAULT")
    assert not dflt.applies and "recovery" in dflt.note


def test_debian_efi_stub_and_kernel_cmdline_not_read_by_update_grub(make_root):
    cfg = resolve(make_root, debian_tree(**{"etc/kernel/cmdline": "hugepages=99\n"}), efi=True)
    assert cfg.firmware == "efi" and cfg.config_path == "/boot/grub/grub.cfg"
    kc = next(i for i in cfg.inputs if i.name == "/etc/kernel/cmdline")
    assert not kc.applies and "kernel-install" in kc.note
    assert all(s.source != "/etc/kernel/cmdline:1" for s in cfg.stale)


def test_xen_dom0_arguments_come_from_the_module_line(make_root):
    text = (
        "set default=0\n"
        "menuentry 'Debian GNU/Linux, with Xen hypervisor' {\n"
        "\tmultiboot2\t/boot/xen-4.17-amd64.gz placeholder dom0_mem=4G,max:4G iommu=verbose\n"
        "\tmodule2\t/boot/vmlinuz-6.1.0-13-amd64 placeholder root=UUID=x ro quiet hugepages=64\n"
        "\tmodule2\t--nounzip /boot/initrd.img-6.1.0-13-amd64\n}\n"
    )
    cfg = resolve(make_root, {"boot/grub/grub.cfg": text})
    assert cfg.entry.kernel == "/boot/vmlinuz-6.1.0-13-amd64"
    assert cfg.entry.cmdline == "root=UUID=x ro quiet hugepages=64"
    assert cfg.entry.hypervisor.startswith("multiboot2 /boot/xen-4.17-amd64.gz")
    assert any("Xen entry" in p for p in cfg.problems)


# -- legacy GRUB ---------------------------------------------------------------------------------------------


def test_centos6_legacy_through_absolute_symlink(make_root):
    spec = {
        "boot/grub/grub.conf": DATA / "centos6-hugepages-grub.conf",
        "etc/grub.conf": Link("/boot/grub/grub.conf"),
    }
    cfg = resolve(make_root, spec)
    assert cfg.loader == "grub-legacy" and cfg.family_hint == "edit /boot/grub/grub.conf"
    assert cfg.entry.title == "Red Hat Enterprise Linux Server (2.6.18-308.1.1.el5)"
    params = effective_params(cfg)
    req = hugepage_request(params, 2 * M)
    assert req.pools == {2 * M: 512} and req.default_size == 2 * M and req.problems == ()
    assert last(params, "intel_iommu") == "on"
    assert cfg.inputs == () and cfg.stale == ()


def test_legacy_config_only_reachable_through_an_absolute_link(make_root):
    # an absolute link in an image is re-rooted: it must not read the auditing machine's /boot
    spec = {
        "etc/grub.conf": Link("/boot/grub-legacy/grub.conf"),
        "boot/grub-legacy/grub.conf": DATA / "rhel5-grub.conf",
    }
    cfg = resolve(make_root, spec)
    assert cfg.config_path == "/boot/grub-legacy/grub.conf"
    assert cfg.entry.kernel == "/vmlinuz-2.6.18-308.1.1.el5"
    assert any(e.source == "/etc/grub.conf -> /boot/grub-legacy/grub.conf" for e in cfg.provenance)


def test_legacy_unindented_entries_and_default_saved(make_root):
    # field bug #11 (inspec #868): Amazon Linux 1 menu.lst
    menu = (DATA / "amzn1-menu.lst").read_text().replace("default=0", "default=saved")
    cfg = resolve(make_root, {"boot/grub/menu.lst": menu, "boot/grub/default": "1\n"})
    assert cfg.entry.kernel == "/boot/vmlinuz-3.14.26-24.46.amzn1.x86_64"
    cfg = resolve(make_root, {"boot/grub/menu.lst": DATA / "amzn1-menu.lst"})
    assert last(effective_params(cfg), "transparent_hugepage") == "never"


def test_legacy_xen_and_glued_tokens(make_root):
    conf = (
        "default=0\ntitle CentOS (2.6.18-xen)\n\troot (hd0,0)\n\tkernel /xen.gz-2.6.18 dom0_mem=2G\n"
        "\tmodule /vmlinuz-2.6.18-xen ro root=LABEL=/ console=ttyS0,115200n8transparent_hugepage=never\n"
        "\tmodule /initrd-2.6.18-xen.img\n"
    )
    cfg = resolve(make_root, {"boot/grub/grub.conf": conf})
    assert (
        cfg.entry.kernel == "/vmlinuz-2.6.18-xen"
        and cfg.entry.hypervisor == "kernel /xen.gz-2.6.18 dom0_mem=2G"
    )
    # field bug #19 (tuned #268): a parameter glued to the previous value
    assert any("glued" in p for p in cfg.problems)


# -- nothing usable -------------------------------------------------------------------------------------


def test_no_boot_configuration_is_unknown_not_empty(make_root):
    # field bug #13 (mql #10917): zero entries must never read as "no parameters"
    cfg = resolve(make_root, {"etc/hostname": "image\n", "boot": Dir()})
    assert cfg.loader is None and cfg.entry is None
    assert effective_params(cfg) is None
    assert "boot parameters unknown" in cfg.summary


def test_grub_cfg_without_entries_is_unknown(make_root):
    cfg = resolve(make_root, {"boot/grub2/grub.cfg": "set timeout=5\n"})
    assert cfg.loader == "grub2" and cfg.entry is None
    assert effective_params(cfg) is None
    assert any("no menu entries" in p for p in cfg.problems)


def test_malformed_grub_cfg_is_a_problem_not_a_crash(make_root):
    cfg = resolve(
        make_root,
        {
            "boot/grub2/grub.cfg": "menuentry 'x' {\n linux /vmlinuz\n",
            "etc/default/grub": 'GRUB_CMDLINE_LINUX="quiet"\n',
        },
    )
    assert cfg.entry is None and effective_params(cfg) is None
    assert any("/boot/grub2/grub.cfg:1" in p for p in cfg.problems)
    assert cfg.inputs[0].name == "GRUB_CMDLINE_LINUX"  # inputs are still read


def test_systemd_boot_is_detected_as_unsupported(make_root):
    spec = {
        "boot/efi/loader/loader.conf": "default arch.conf\n",
        "boot/efi/loader/entries/arch.conf": (
            "title Arch\nlinux /vmlinuz-linux\noptions root=/dev/sda2 rw hugepages=16\n"
        ),
        "boot/efi/EFI/systemd/systemd-bootx64.efi": "",
        "etc/kernel/cmdline": "root=/dev/sda2 rw hugepages=16\n",
    }
    cfg = resolve(make_root, spec)
    assert cfg.loader == "systemd-boot" and cfg.entry is None
    assert effective_params(cfg) is None
    assert any("unsupported boot loader: systemd-boot" in p for p in cfg.problems)
    assert cfg.inputs[0].applies


def test_suspicious_params():
    msgs = suspicious_params(
        tokenize("transparent_hugepages=never hugepagsz=1G iommu=pt console=ttyS0,115200n8intel_iommu=on")
    )
    assert len(msgs) == 3
    assert (
        suspicious_params(tokenize("transparent_hugepage=never hugepagesz=1G hugepages=4 amd_iommu=off"))
        == []
    )


def test_rhel7_tuned_params_in_grub_cfg_and_default_grub(make_root):
    # RHEL 7 tuned: grub.cfg's 00_tuned sets $tuned_params; /etc/default/grub refers to it literally
    text = (DATA / "rhel72-grub.cfg").read_text()
    text = text.replace('set tuned_params=""', 'set tuned_params="isolcpus=2-3 nohz_full=2-3"')
    text = text.replace("LANG=en_US.UTF-8\n", "LANG=en_US.UTF-8 $tuned_params\n")
    spec = {
        "boot/grub2/grub.cfg": text,
        "boot/grub2/grubenv": grubenv(saved_entry="1"),
        "etc/default/grub": (
            'GRUB_CMDLINE_LINUX="crashkernel=auto rhgb quiet"\n'
            'GRUB_CMDLINE_LINUX_DEFAULT="${GRUB_CMDLINE_LINUX_DEFAULT:+$GRUB_CMDLINE_LINUX_DEFAULT }'
            '\\$tuned_params"\n'
        ),
        "etc/tuned/bootcmdline": (
            'TUNED_BOOT_CMDLINE="isolcpus=2-3 nohz_full=2-3 transparent_hugepage=never"\n'
        ),
        "usr/sbin/grub2-mkconfig": "",
    }
    cfg = resolve(make_root, spec)
    assert cfg.entry.index == "1"
    assert cfg.entry.cmdline.endswith("LANG=en_US.UTF-8 isolcpus=2-3 nohz_full=2-3")
    assert any(e.observed.endswith("$tuned_params") for e in cfg.provenance)
    dflt = next(i for i in cfg.inputs if i.name == "GRUB_CMDLINE_LINUX_DEFAULT")
    assert dflt.value == "$tuned_params"  # a GRUB variable, not compared
    tuned = next(i for i in cfg.inputs if i.name == "TUNED_BOOT_CMDLINE")
    assert tuned.applies
    assert cfg.stale == (StaleParam("transparent_hugepage", "never", None, "/etc/tuned/bootcmdline:1"),)
    assert cfg.family_hint == "grub2-mkconfig -o /boot/grub2/grub.cfg"


def test_esp_entries_without_grub_are_systemd_boot(make_root):
    spec = {"efi/loader/entries/fedora.conf": "title Fedora\nlinux /vmlinuz\noptions root=/dev/sda2\n"}
    cfg = resolve(make_root, spec)
    assert cfg.loader == "systemd-boot" and effective_params(cfg) is None


def test_grub_with_bls_entries_on_the_esp_is_still_grub(make_root):
    spec = el_tree(**{"boot__efi__loader__entries__x.conf": "title x\nlinux /vmlinuz\noptions a=1\n"})
    cfg = resolve(make_root, spec, efi=True)
    assert cfg.loader == "grub2-bls" and not any("systemd-boot" in p for p in cfg.problems)


def test_grub_mkconfig_hint_without_update_grub(make_root):
    spec = {
        "boot/grub/grub.cfg": "menuentry 'Arch Linux' {\n linux /vmlinuz-linux root=/dev/sda2 rw\n}\n",
        "usr/sbin/grub-mkconfig": "",
    }
    cfg = resolve(make_root, spec)
    assert cfg.family_hint == "grub-mkconfig -o /boot/grub/grub.cfg"
    assert cfg.entry.cmdline == "root=/dev/sda2 rw"


def test_a_grub_cfg_is_parsed_once_per_process_and_failures_are_not_kept(monkeypatch) -> None:
    """Hosts of a fleet share their generated grub.cfg: its syntax tree (tuples only) is kept."""
    from audit.boot import reader
    from audit.parsers import grub
    from audit.parsers.grub.limits import GrubLimitError

    reader._parse_cached.cache_clear()
    calls = []
    real = grub.parse_grub_script

    def counting(text: str):  # type: ignore[no-untyped-def]
        calls.append(text)
        return real(text)

    monkeypatch.setattr(grub, "parse_grub_script", counting)
    text = "set default=0\nmenuentry 'x' { linux /vmlinuz ro }\n"
    assert reader.parse_script(text) is reader.parse_script(text)
    assert len(calls) == 1
    too_many = "echo " + " ".join(["w"] * 300_000) + "\n"
    for _ in range(2):
        with pytest.raises(GrubLimitError):
            reader.parse_script(too_many)
    assert len(calls) == 3
