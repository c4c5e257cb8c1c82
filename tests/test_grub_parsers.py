"""Pure boot loader parsers, tested on strings and on the real samples in tests/data/grub/."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.errors import ParseError
from audit.parsers.grub import (
    BlscfgCall,
    MenuEntry,
    Submenu,
    bls_compare,
    entry_kernel,
    expand_bls_options,
    parse_bls_entry,
    parse_grub_number,
    parse_grub_script,
    parse_grubby_default_index,
    parse_grubenv,
    parse_kernel_cmdline_file,
    parse_legacy_default_file,
    parse_legacy_grub,
    parse_shell_vars,
    rpm_vercmp,
    run_grub_script,
    sort_bls_names,
    split_default,
)

DATA = Path(__file__).parent / "data" / "grub"
MID = "6fa25ca775f64accb0d3e53f0e4e6e92"


def sample(name: str) -> str:
    return (DATA / name).read_bytes().decode("utf-8")


class Files:
    """GrubFiles over a dict of GRUB paths (device prefixes dropped)."""

    def __init__(self, files: dict[str, str] | None = None) -> None:
        self.files = files or {}

    def _key(self, path: str) -> str:
        return path.split(")", 1)[1] if path.startswith("(") else path

    def exists(self, path: str, *, nonempty: bool = False) -> bool | None:
        text = self.files.get(self._key(path))
        return text is not None and (bool(text) or not nonempty)

    def read(self, path: str) -> tuple[str, str] | None:
        key = self._key(path)
        return (key, self.files[key]) if key in self.files else None


def grubenv(**values: str) -> str:
    body = "# GRUB Environment Block\n" + "".join(f"{k}={v}\n" for k, v in values.items())
    return body + "#" * (1024 - len(body.encode()))


# -- /etc/default/grub ------------------------------------------------------------------------------


def test_rhel8_stig_default_grub_crlf_and_no_trailing_newline():
    text = sample("rhel8-stig-etc-default-grub")
    assert "\r\n" in text and not text.endswith("\n")
    parsed = parse_shell_vars(text, tag="/etc/default/grub")
    v = parsed.variables
    assert v["GRUB_CMDLINE_LINUX"].value.startswith("resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root")
    assert v["GRUB_CMDLINE_LINUX"].value.endswith("page_poison=1 slub_debug=P")
    assert v["GRUB_CMDLINE_LINUX"].origins == ("/etc/default/grub:6",)
    assert v["GRUB_ENABLE_BLSCFG"].value == "true"  # the last line, without a newline
    assert "GRUB_CMDLINE_LINUX_DEFAULT" not in v
    assert v["GRUB_DISTRIBUTOR"].dynamic  # $(sed ...) is never run
    assert any("CRLF" in p for p in parsed.problems)


def test_debian12_default_grub():
    parsed = parse_shell_vars(sample("debian12-grub2-common-default-grub"))
    v = parsed.variables
    assert v["GRUB_CMDLINE_LINUX_DEFAULT"].value == "quiet"
    assert v["GRUB_CMDLINE_LINUX"].value == ""
    assert v["GRUB_DEFAULT"].value == "0"
    assert v["GRUB_DISTRIBUTOR"].dynamic  # `lsb_release ...`
    assert "GRUB_BADRAM" not in v and "GRUB_DISABLE_RECOVERY" not in v  # commented out
    assert parsed.problems == ()


def test_proxmox_default_grub_ignores_commented_alternatives():
    v = parse_shell_vars(sample("proxmox-kvm-host-etc-default-grub")).variables
    assert v["GRUB_CMDLINE_LINUX"].value == "root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on"
    assert v["GRUB_CMDLINE_LINUX"].origins == ("11",)
    assert v["GRUB_DISABLE_RECOVERY"].value == "true"


def test_grub_d_expands_earlier_variables_with_origins():
    base = parse_shell_vars('GRUB_CMDLINE_LINUX_DEFAULT="quiet"\n', tag="/etc/default/grub")
    d = parse_shell_vars(
        'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT hugepagesz=1G hugepages=16"\n'
        'GRUB_CMDLINE_LINUX="${GRUB_CMDLINE_LINUX} intel_iommu=on"\n',
        env=base.variables,
        tag="/etc/default/grub.d/50-kvm.cfg",
    )
    dflt = d.variables["GRUB_CMDLINE_LINUX_DEFAULT"]
    assert dflt.value == "quiet hugepagesz=1G hugepages=16"
    assert dflt.origins == ("/etc/default/grub:1", "/etc/default/grub.d/50-kvm.cfg:1")
    assert d.variables["GRUB_CMDLINE_LINUX"].value == " intel_iommu=on"  # undefined expands to nothing
    assert [a.name for a in d.assignments] == ["GRUB_CMDLINE_LINUX_DEFAULT", "GRUB_CMDLINE_LINUX"]


def test_shell_quoting_continuation_export_and_comments():
    text = (
        "# comment\n"
        "A='single $NOT expanded'\n"
        "B=unquoted # trailing comment\n"
        'C="multi \\\n'
        'line"\n'
        'export D="x" E=y\n'
        'F="a \\"quoted\\" $A"\n'
        "G=\\$literal\n"
        'H="${MISSING:-fallback}"\n'
    )
    v = parse_shell_vars(text).variables
    assert v["A"].value == "single $NOT expanded"
    assert v["B"].value == "unquoted"
    assert v["C"].value == "multi line"
    assert v["D"].value == "x" and v["E"].value == "y"
    assert v["F"].value == 'a "quoted" single $NOT expanded'
    assert v["G"].value == "$literal"
    assert v["H"].value == "fallback"


def test_shell_commands_are_reported_not_run():
    parsed = parse_shell_vars('if [ -x /bin/true ]; then\n  X="1"\nfi\n')
    assert parsed.variables["X"].value == "1"
    assert any("line 1" in p and "not evaluated" in p for p in parsed.problems)


def test_shell_unterminated_quote():
    with pytest.raises(ParseError) as exc:
        parse_shell_vars('A=1\nGRUB_CMDLINE_LINUX="quiet\n')
    assert exc.value.line == 2


# -- grubenv ------------------------------------------------------------------------------------------


def test_grubenv_el8_sample():
    env = parse_grubenv((DATA / "el8-grubenv").read_bytes())
    assert env.values["saved_entry"] == f"{MID}-5.16.9-custom"
    assert env.values["kernelopts"].startswith("root=/dev/mapper/rl-root ro")
    assert env.lines["kernelopts"] == 3
    assert env.problems == ()


def test_grubenv_title_with_spaces_and_escapes():
    env = parse_grubenv(
        grubenv(saved_entry="Red Hat Enterprise Linux Server (3.10.0-327.el7.x86_64) 7.2 (Maipo)")
    )
    assert env.values["saved_entry"] == "Red Hat Enterprise Linux Server (3.10.0-327.el7.x86_64) 7.2 (Maipo)"
    env = parse_grubenv(grubenv(x="a\\\\b\\\nc"))
    assert env.values["x"] == "a\\b\nc"


def test_grubenv_tuned_plural_sample_from_insights():
    # insights' own fixture: tuned_params=transparent_hugepages=never (the plural the kernel ignores)
    env = parse_grubenv(grubenv(tuned_params="transparent_hugepages=never", tuned_initrd=""))
    assert env.values["tuned_params"] == "transparent_hugepages=never"
    assert env.values["tuned_initrd"] == ""


def test_grubenv_size_mismatch_is_a_problem_not_an_error():
    env = parse_grubenv("# GRUB Environment Block\nsaved_entry=0\n")
    assert env.values == {"saved_entry": "0"}
    assert any("not 1024" in p for p in env.problems)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\0" * 1024,
        b"saved_entry=0\n" + b"#" * 1010,
        b"# GRUB Environment Block\nsaved_entry=0\ngarbage line\n" + b"#" * 900,
        b"# GRUB Environment Block\nsaved_entry=0\n\0\0\0" + b"#" * 900,
    ],
    ids=["empty", "zeroed", "no-signature", "line-without-equals", "nul-bytes"],
)
def test_grubenv_damaged_block(data):
    with pytest.raises(ParseError) as exc:
        parse_grubenv(data)
    assert "invalid environment block" in exc.value.problem


# -- GRUB 2 scripts ------------------------------------------------------------------------------------


def test_rhel72_sample_menu_and_default():
    script = parse_grub_script(sample("rhel72-grub.cfg"))
    files = Files({"/boot/grub2/grubenv": grubenv(saved_entry="x")})
    run = run_grub_script(script, label="grub.cfg", files=files, env={"prefix": "/boot/grub2"})
    assert [type(m) for m in run.menu] == [MenuEntry, MenuEntry, MenuEntry]
    titles = [m.title for m in run.menu]
    assert titles[1] == "Red Hat Enterprise Linux Server (3.10.0-327.el7.x86_64) 7.2 (Maipo)"
    assert run.menu[0].entry_id == run.menu[1].entry_id  # the sample reuses the id: first match wins in GRUB
    assert run.env["default"] == "x"  # set default="${saved_entry}"
    assert run.env["menuentry_id_option"] == "--id"
    k = entry_kernel(run.menu[2], env=run.env, files=files)
    assert k is not None and k.command == "linux16"
    assert k.path == "/vmlinuz-0-rescue-925cd320373b6a4a9a66a26371afccd2"
    assert k.cmdline.endswith("rhgb quiet") and "LANG" not in k.cmdline


def test_next_entry_wins_over_saved_entry():
    script = parse_grub_script(sample("rhel72-grub.cfg"))
    files = Files({"/boot/grub2/grubenv": grubenv(saved_entry="1", next_entry="2")})
    run = run_grub_script(script, label="grub.cfg", files=files, env={"prefix": "/boot/grub2"})
    assert run.env["default"] == "2"
    assert run.env["next_entry"] == ""  # cleared by the script, as GRUB does
    assert run.env_loads[0][1]["next_entry"] == "2"


def test_debian_submenu_nesting_and_if_wrapped_entries():
    script = parse_grub_script(sample("debian12-grub.cfg"))
    run = run_grub_script(
        script, label="grub.cfg", files=Files(), platform="pc", env={"prefix": "/boot/grub"}
    )
    assert [type(m) for m in run.menu] == [MenuEntry, Submenu]  # UEFI entry only on efi
    sub = run.menu[1]
    assert isinstance(sub, Submenu)
    assert [c.title for c in sub.children][1] == "Debian GNU/Linux, with Linux 6.1.0-13-amd64 (recovery mode)"
    assert run.env["default"] == "1>2"
    k = entry_kernel(sub.children[1], env=run.env, files=Files())
    assert k is not None and k.cmdline.endswith("ro single")


def test_platform_unknown_marks_conditional_entries():
    text = (
        'if [ "$grub_platform" = "efi" ]; then\n menuentry "fw" { fwsetup; }\nfi\n'
        'menuentry "linux" {\n linux /vmlinuz ro\n}\n'
    )
    run = run_grub_script(parse_grub_script(text), label="c", files=Files())
    assert [(m.title, m.conditional) for m in run.menu] == [("fw", True), ("linux", False)]
    run = run_grub_script(parse_grub_script(text), label="c", files=Files(), platform="pc")
    assert [m.title for m in run.menu] == ["linux"]


def test_guarded_kernelopts_fallback():
    cfg = sample("el8-bls-grub.cfg")
    script = parse_grub_script(cfg)
    # (a) grubenv defines kernelopts: the guarded fallback does not apply
    files = Files({"/boot/grub2/grubenv": grubenv(kernelopts="root=/dev/sda1 ro from-grubenv")})
    run = run_grub_script(
        script,
        label="grub.cfg",
        files=files,
        env={"prefix": "/boot/grub2", "config_directory": "/boot/grub2"},
    )
    (call,) = [m for m in run.menu if isinstance(m, BlscfgCall)]
    assert call.env["kernelopts"] == "root=/dev/sda1 ro from-grubenv"
    assert call.origins["kernelopts"].startswith("/boot/grub2/grubenv:2")
    # (b) no grubenv: the fallback in grub.cfg applies
    run = run_grub_script(
        script,
        label="grub.cfg",
        files=Files(),
        env={"prefix": "/boot/grub2", "config_directory": "/boot/grub2"},
    )
    (call,) = [m for m in run.menu if isinstance(m, BlscfgCall)]
    assert call.env["kernelopts"].startswith("root=/dev/mapper/rl-root ro crashkernel=auto")
    fallback_line = next(n for n, line in enumerate(cfg.splitlines(), 1) if "set kernelopts=" in line)
    assert call.origins["kernelopts"] == f"grub.cfg:{fallback_line}"
    assert call.line == cfg.splitlines().index("blscfg") + 1
    assert "tuned_params" not in call.env


def test_variables_set_after_blscfg_do_not_reach_its_entries():
    text = "set kernelopts=early\nblscfg\nset kernelopts=late\n"
    run = run_grub_script(parse_grub_script(text), label="c", files=Files())
    (call,) = run.menu
    assert isinstance(call, BlscfgCall) and call.env["kernelopts"] == "early"
    assert run.env["kernelopts"] == "late"


def test_blsdir_and_blscfg_argument():
    run = run_grub_script(parse_grub_script("set blsdir=/custom/entries\nblscfg\n"), label="c", files=Files())
    assert run.menu[0].blsdir == "/custom/entries"
    run = run_grub_script(parse_grub_script("blscfg /other\n"), label="c", files=Files())
    assert run.menu[0].blsdir == "/other"


def test_efi_stub_configfile_redirect():
    stub = sample("el9-efi-stub-grub.cfg")
    files = Files(
        {"/grub2/grub.cfg": "set default=0\nmenuentry 'real' {\n linux /vmlinuz-6 root=/dev/vda2 ro\n}\n"}
    )
    run = run_grub_script(parse_grub_script(stub), label="stub", files=files, env={"prefix": "/EFI/redhat"})
    assert [m.title for m in run.menu] == ["real"]
    (r,) = run.redirects
    assert r.command == "configfile" and r.target == "()/grub2/grub.cfg" and r.resolved == "/grub2/grub.cfg"


def test_debian_efi_stub_quoted_prefix():
    stub = sample("debian12-efi-stub-grub.cfg")
    files = Files({"/boot/grub/grub.cfg": "menuentry 'deb' {\n linux /vmlinuz ro\n}\n"})
    run = run_grub_script(parse_grub_script(stub), label="stub", files=files)
    assert run.redirects[0].target == "()/boot/grub/grub.cfg"
    assert [m.title for m in run.menu] == ["deb"]


def test_configfile_to_missing_file_and_loops():
    run = run_grub_script(parse_grub_script("configfile /grub2/grub.cfg\n"), label="stub", files=Files())
    assert run.menu == () and any("does not exist" in p for p in run.problems)
    loop = Files({"/a.cfg": "configfile /a.cfg\n"})
    run = run_grub_script(parse_grub_script("configfile /a.cfg\n"), label="stub", files=loop)
    assert any("loop" in p for p in run.problems)


def test_source_is_inline():
    files = Files({"/boot/grub/custom.cfg": "menuentry 'custom' {\n linux /vmlinuz-c ro custom=1\n}\n"})
    text = (
        "menuentry 'first' {\n linux /vmlinuz ro\n}\n"
        "if [ -f ${config_directory}/custom.cfg ]; then\n source ${config_directory}/custom.cfg\nfi\n"
    )
    run = run_grub_script(
        parse_grub_script(text), label="grub.cfg", files=files, env={"config_directory": "/boot/grub"}
    )
    assert [m.title for m in run.menu] == ["first", "custom"]


def test_menuentry_options_and_ids():
    text = (
        "menuentry 'A' --class x --id=a-id {\n linux /a\n}\n"
        "menuentry --unrestricted 'B' --id b-id --users root {\n linux /b\n}\n"
        'menuentry "C" $menuentry_id_option c-id {\n linux /c\n}\n'
    )
    run = run_grub_script(
        parse_grub_script(text), label="c", files=Files(), env={"menuentry_id_option": "--id"}
    )
    assert [(m.title, m.entry_id) for m in run.menu] == [("A", "a-id"), ("B", "b-id"), ("C", "c-id")]
    assert run.menu[0].classes == ("x",)


def test_entry_kernel_variants():
    text = (
        "menuentry 'efi' {\n if [ x$grub_platform = xefi ]; then linuxefi /vmlinuz-e ro a=1;"
        " else linux16 /vmlinuz-b ro b=1; fi\n}\n"
        "menuentry 'vars' {\n set extra=\"x=1 y=2\"\n"
        " linux /vmlinuz ro $extra \"$quoted\" $tuned_params 'spaced arg=a b'\n}\n"
        "menuentry 'xen' {\n multiboot2 /boot/xen.gz placeholder dom0_mem=4G iommu=on\n"
        " module2 /boot/vmlinuz-6.1 placeholder root=/dev/sda1 ro quiet intel_iommu=on\n"
        " module2 --nounzip /boot/initrd.img\n}\n"
        "menuentry 'chain' {\n chainloader /EFI/Microsoft/Boot/bootmgfw.efi\n}\n"
        "menuentry 'nokernel' {\n fwsetup\n}\n"
    )
    run = run_grub_script(parse_grub_script(text), label="c", files=Files())
    efi, vars_, xen, chain, none = run.menu
    k = entry_kernel(efi, env={}, files=Files(), platform="efi")
    assert (k.command, k.path, k.cmdline, k.uncertain) == ("linuxefi", "/vmlinuz-e", "ro a=1", False)
    k = entry_kernel(efi, env={}, files=Files(), platform="pc")
    assert (k.command, k.cmdline) == ("linux16", "ro b=1")
    k = entry_kernel(efi, env={}, files=Files(), platform=None)
    assert k.uncertain and k.command == "linuxefi"
    k = entry_kernel(vars_, env={"quoted": "q v"}, files=Files())
    assert k.cmdline == 'ro x=1 y=2 "q v" "spaced arg=a b"'
    assert k.undefined == ("tuned_params",)
    assert "$extra" in k.raw_args
    k = entry_kernel(xen, env={}, files=Files())
    assert k.command == "module" and k.path == "/boot/vmlinuz-6.1"
    assert k.cmdline == "root=/dev/sda1 ro quiet intel_iommu=on"
    assert k.hypervisor.startswith("multiboot2 /boot/xen.gz")
    k = entry_kernel(chain, env={}, files=Files())
    assert k.chainloader == "/EFI/Microsoft/Boot/bootmgfw.efi" and k.cmdline == ""
    assert entry_kernel(none, env={}, files=Files()) is None


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("menuentry 'x' {\n linux /vmlinuz\n", 1),
        ("if [ a ]; then\n set x=1\n", 1),
        ("fi\n", 1),
        ("set x='unterminated\n", 1),
        ('set a=1\nset b="open\n\n', 2),
    ],
)
def test_grub_script_syntax_errors(text, line):
    with pytest.raises(ParseError) as exc:
        parse_grub_script(text)
    assert exc.value.line == line


def test_unknown_conditions_make_variables_uncertain():
    text = "set default=0\nif keystatus --shift; then\n set default=2\nfi\n"
    run = run_grub_script(parse_grub_script(text), label="c", files=Files())
    assert run.env["default"] == "0"
    assert run.uncertain["default"] == "c:3"


def test_split_default_and_numbers():
    assert split_default("1>2") == ["1", "2"]
    assert split_default("gnulinux-advanced-x>gnulinux-6.1-advanced-x") == [
        "gnulinux-advanced-x",
        "gnulinux-6.1-advanced-x",
    ]
    assert split_default("a >> b>c") == ["a > b", "c"]
    assert [parse_grub_number(x) for x in ("0", "12", "0x10", "010", "saved", "1>2")] == [
        0,
        12,
        16,
        8,
        None,
        None,
    ]


# -- BLS ------------------------------------------------------------------------------------------------


def test_bls_rocky_sample():
    e = parse_bls_entry(sample(f"bls-rocky8.5-{MID}-5.16.9-custom.conf"))
    assert e.title == "Rocky Linux (5.16.9-custom) 8.5 (Green Obsidian)"
    assert e.version == "5.16.9-custom" and e.linux == "/vmlinuz-5.16.9-custom"
    assert e.initrd == ("/initramfs-5.16.9-custom.img", "$tuned_initrd")
    assert e.options == ("$kernelopts $tuned_params",)
    assert e.entry_id == "rocky-20220212013135-5.16.9-custom"
    assert e.grub_users == "$grub_users" and e.grub_arg == ("--unrestricted",) and e.grub_class == ("kernel",)
    assert e.grub_stop_line is None
    assert e.line_of("options") == 5


def test_bls_comments_blank_lines_and_valueless_keys():
    # insights crashes on these; GRUB's blscfg stops reading at the first blank or valueless line
    text = (
        "# written by hand\n"
        "title Fedora\n"
        "\n"
        "version 6.8.5-301.fc40.x86_64\n"
        "linux /vmlinuz-6.8.5-301.fc40.x86_64\n"
        "grub_arg\n"
        "options root=UUID=1 ro\n"
        "options hugepages=64\n"
        "  initrd /initramfs-1.img\n"
        "initrd /extra.img\n"
        "efi\n"
    )
    e = parse_bls_entry(text)
    assert e.title == "Fedora" and e.version == "6.8.5-301.fc40.x86_64"
    assert e.grub_arg == ("",) and e.efi == ""
    assert e.options == ("root=UUID=1 ro", "hugepages=64")
    assert e.options_joined == "root=UUID=1 ro hugepages=64"
    assert e.initrd == ("/initramfs-1.img", "/extra.img")
    assert e.grub_stop_line == 3
    assert e.grub_values("title") == [("Fedora", 2)]
    assert e.grub_values("linux") == []
    assert not any(k.startswith("#") for k, _v, _n in e.keys)


def test_bls_binary_content():
    with pytest.raises(ParseError):
        parse_bls_entry("title x\0\n")


def test_rpm_vercmp():
    assert rpm_vercmp("5.16.9", "4.18.0") == 1
    assert rpm_vercmp("4.18.0", "4.18.0") == 0
    assert rpm_vercmp("348.el8", "305.el8") == 1
    assert rpm_vercmp("1.0~rc1", "1.0") == -1
    assert rpm_vercmp("1.0", "1.0a") == -1
    assert rpm_vercmp("10", "9") == 1
    assert rpm_vercmp("a", "1") == -1


def test_bls_sorted_like_grub():
    names = [
        f"{MID}-0-rescue",
        f"{MID}-4.18.0-348.el8.x86_64",
        f"{MID}-5.16.9-custom",
        f"{MID}-4.18.0-348.7.1.el8_5.x86_64",
    ]
    assert sort_bls_names(names) == [
        f"{MID}-5.16.9-custom",
        f"{MID}-4.18.0-348.7.1.el8_5.x86_64",
        f"{MID}-4.18.0-348.el8.x86_64",
        f"{MID}-0-rescue",
    ]
    assert bls_compare("a-1-1", "a-1-1") == 0


def test_expand_bls_options():
    text, used, undefined = expand_bls_options(
        "$kernelopts ${tuned_params} hugepages=8", {"kernelopts": "root=/dev/x ro "}
    )
    assert text == "root=/dev/x ro hugepages=8"
    assert used == ("kernelopts", "tuned_params") and undefined == ("tuned_params",)
    assert "$" not in expand_bls_options("$a $b", {})[0]


# -- legacy GRUB ------------------------------------------------------------------------------------------


def test_rhel5_grub_conf_sample():
    cfg = parse_legacy_grub(sample("rhel5-grub.conf"))
    assert cfg.default == "0" and cfg.default_line == 10
    assert [e.title for e in cfg.entries] == [
        "Red Hat Enterprise Linux Server (2.6.18-308.1.1.el5)",
        "Red Hat Enterprise Linux Server (2.6.18-238.el5)",
    ]
    e = cfg.entries[0]
    assert (e.kernel, e.kernel_args, e.kernel_line) == (
        "/vmlinuz-2.6.18-308.1.1.el5",
        "ro root=/dev/VolGroup00/LogVol00 rhgb quiet",
        16,
    )
    assert e.initrd == "/initrd-2.6.18-308.1.1.el5.img" and e.root == "(hd0,0)"


def test_legacy_unindented_lines_after_title():
    cfg = parse_legacy_grub(sample("amzn1-menu.lst"))
    assert len(cfg.entries) == 2
    assert cfg.entries[0].kernel == "/boot/vmlinuz-3.14.27-25.47.amzn1.x86_64"
    assert cfg.entries[0].kernel_args.endswith("transparent_hugepage=never")


def test_legacy_variants():
    text = (
        "default saved\nfallback=1\n"
        "title Xen\n\tkernel --no-mem-option /xen.gz dom0_mem=1G\n"
        "\tmodule /vmlinuz-2.6.18-xen ro root=/dev/sda1 intel_iommu=on\n\tmodule /initrd-xen.img\n"
        "title Plain\nkernel=/vmlinuz ro\n"
    )
    cfg = parse_legacy_grub(text)
    assert cfg.default == "saved" and cfg.fallback == "1"
    xen, plain = cfg.entries
    assert xen.kernel == "/xen.gz" and xen.kernel_args == "dom0_mem=1G"
    assert xen.modules[0] == ("/vmlinuz-2.6.18-xen", "ro root=/dev/sda1 intel_iommu=on", 5)
    assert plain.kernel == "/vmlinuz" and plain.kernel_args == "ro"
    assert parse_legacy_default_file("1\n#\n#\n") == 1
    assert parse_legacy_default_file("") is None


# -- one-line files and grubby ------------------------------------------------------------------------------


def test_kernel_cmdline_file():
    assert parse_kernel_cmdline_file("root=UUID=1 ro  hugepages=16\n") == "root=UUID=1 ro hugepages=16"
    assert parse_kernel_cmdline_file("a=1\nb=2\n") == "a=1 b=2"
    assert parse_kernel_cmdline_file("") == ""


def test_grubby_default_index_with_noise():
    out = (
        "grubby-bls: line 37: /etc/machine-id: No such file or directory\n"
        "grub2-editenv: error: cannot rename the file /boot/grub2/grubenv.new to /boot/grub2/grubenv\n"
        "2\n"
    )
    index, noise = parse_grubby_default_index(out)
    assert index == 2 and len(noise) == 2


def test_grubby_noise_only_is_malformed():
    with pytest.raises(ParseError):
        parse_grubby_default_index("sh: grub2-editenv: command not found\nrpm-sort: Invalid input\n")


def test_hostile_nesting_is_refused_not_a_crash():
    text = "if true; then\n" * 5000 + "set x=1\n" + "fi\n" * 5000
    with pytest.raises(ParseError) as exc:
        parse_grub_script(text)
    assert "nested" in exc.value.problem
    ok = "if true; then\n" * 10 + "menuentry 'deep' {\n linux /vmlinuz\n}\n" + "fi\n" * 10
    run = run_grub_script(parse_grub_script(ok), label="c", files=Files())
    assert [m.title for m in run.menu] == ["deep"]


def test_bls_lines_split_as_grub_splits_them() -> None:
    """GRUB reads BLS files a line feed at a time and separates key and value at a space or tab
    (grub_isspace): \\x1c-\\x1f, form feed, NEL and U+2028 stay inside the line, unlike in Python's
    str.splitlines() and \\s. Found by hypothesis (tests/test_fuzz.py): '\\x1f0' crashed the parser."""
    from audit.parsers.grub import parse_bls_entry

    entry = parse_bls_entry("title a\x1fb\r\nlinux /vmlinuz\noptions a=b\x1c c\u2028d=e\x0cf\n")
    assert entry.title == "a\x1fb"
    assert entry.options == ("a=b\x1c c\u2028d=e\x0cf",)
    assert parse_bls_entry("\x1f0").keys == (("\x1f0", "", 1),)
