"""When GRUB evaluates what: menu entries boot after the whole file has run, ``blscfg`` expands its
entries' options where it stands, submenus and ``configfile`` open a new context, functions run when
called. On the real samples in tests/data/grub/ (sources in its README.md) and small scripts.

What GRUB does, from its source (rhboot/grub2, the Fedora/RHEL tree; upstream's files are the same
where no Red Hat patch is named):

- grub-core/normal/menu.c ``grub_menu_execute_entry``: an entry's body (its ``sourcecode``) runs when
  the entry boots, in the current context; for a submenu, after ``grub_env_context_open``.
- grub-core/normal/context.c ``grub_env_new_context``: a new context copies the exported variables
  only (``var->global``); Red Hat's "Export all variables from the initial context when creating a
  submenu" (rhboot commit 30ab5fcb4) makes it copy every one. commands/configfile.c opens one for
  ``configfile``, not for ``source``. kern/env.c: ``export`` of an unset variable sets it to "".
- grub-core/commands/blscfg.c ``create_entry``: ``options = expand_val (bls_get_val (entry,
  "options", NULL))``, called from ``grub_cmd_blscfg`` (branch rhel-8.0.0 0af1f566f, rhel-8.5.0
  7b02265ab, fedora-44 5e9e7e44e; since "blscfg: Expand the BLS options field instead of showing its
  variables", 0ab44d89e, 2018-07-18); upstream's blsuki.c ``bls_get_linux`` does the same with
  ``blsuki_expand_val``. A BLS entry's ``options`` are therefore expanded where ``blscfg`` stands,
  not when the entry boots.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.boot.model import BootConfig, effective_params
from audit.boot.resolver import resolve_boot_config
from audit.host.fs import RootFS
from audit.parsers.cmdline import last
from audit.parsers.grub import (
    BlscfgCall,
    MenuEntry,
    Submenu,
    entry_kernel,
    parse_grub_script,
    run_grub_script,
)
from tests.test_grub_parsers import Files, grubenv

DATA = Path(__file__).parent / "data" / "grub"
INSIGHTS_CFG = DATA / "insights-rhel8-blscfg-before-load_env-grub.cfg"
INSIGHTS_ENV = DATA / "insights-rhel8-grubenv-tuned-params"
INSIGHTS_ID = "295e1ba1696e4fad9e062f096f92d147-4.18.0-305.el8.x86_64"  # the grubenv's saved_entry
INSIGHTS_KERNELOPTS = (
    "root=/dev/mapper/root_vg-lv_root ro crashkernel=auto resume=/dev/mapper/root_vg-lv_swap "
    "rd.lvm.lv=root_vg/lv_root rd.lvm.lv=root_vg/lv_swap console=tty0 console=ttyS0,115200 noapic"
)
UBUNTU_CFG = DATA / "ubuntu2204-cloudimg-grub.cfg"
UBUNTU_LINUX = "root=LABEL=cloudimg-rootfs ro  console=tty1 console=ttyS0"


def resolve(make_root, spec, efi=None) -> BootConfig:
    return resolve_boot_config(RootFS(str(make_root(spec))), efi=efi)


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def insights_tree(**overrides: object) -> dict[str, object]:
    tree: dict[str, object] = {
        "boot/grub2/grub.cfg": INSIGHTS_CFG,
        "boot/grub2/grubenv": INSIGHTS_ENV,
        f"boot/loader/entries/{INSIGHTS_ID}.conf": DATA / "insights-rhel8.4-4.18.0-305.el8.x86_64.conf",
    }
    tree.update({key.replace("__", "/"): value for key, value in overrides.items()})
    return {path: value for path, value in tree.items() if value is not None}


def ubuntu_tree(**extra: object) -> dict[str, object]:
    tree: dict[str, object] = {
        "boot/grub/grub.cfg": UBUNTU_CFG,
        "boot/efi/EFI/ubuntu/grub.cfg": DATA / "ubuntu2204-cloudimg-efi-stub-grub.cfg",
        "boot/efi/EFI/ubuntu/shimx64.efi": "",
        "boot/grub/grubenv": DATA / "ubuntu2204-cloudimg-grubenv",
        "boot/grub/gfxblacklist.txt": DATA / "ubuntu2204-gfxblacklist.txt",
        "etc/default/grub": DATA / "ubuntu2204-cloudimg-etc-default-grub",
        "etc/default/grub.d/50-cloudimg-settings.cfg": DATA / "ubuntu2204-cloudimg-50-cloudimg-settings.cfg",
        "usr/sbin/update-grub": "#!/bin/sh\n",
    }
    tree.update(extra)
    return tree


def ubuntu_splash_cfg() -> str:
    """The sample as update-grub writes it for the image's own GRUB_CMDLINE_LINUX_DEFAULT="quiet splash"
    (its /etc/default/grub) without the cloud image's override: Ubuntu's vt-handoff patch appends
    ``$vt_handoff`` (the form of the Ubuntu 17.10 grub.cfg lines quoted on ubuntuforums.org,
    ``ro  quiet splash $vt_handoff``)."""
    return UBUNTU_CFG.read_text().replace(UBUNTU_LINUX, "root=LABEL=cloudimg-rootfs ro  quiet splash $vt_handoff")


# -- BLS: options expand where blscfg stands -------------------------------------------------------------


def test_insights_sample_blscfg_runs_before_grubenv_is_loaded():
    text = INSIGHTS_CFG.read_text()
    files = Files({"/boot/grub2/grubenv": INSIGHTS_ENV.read_text()})
    run = run_grub_script(parse_grub_script(text), label="grub.cfg", files=files, env={"prefix": "/boot/grub2"})
    (call,) = [m for m in run.menu if isinstance(m, BlscfgCall)]
    assert call.line == line_of(text, "blscfg") + 1  # "insmod blscfg", then "blscfg"
    assert "kernelopts" not in call.env and call.env["tuned_params"] == ""
    # the file goes on: load_env, then the guarded fallback (skipped: grubenv defined kernelopts)
    assert run.env["kernelopts"] == INSIGHTS_KERNELOPTS
    assert run.origins["kernelopts"] == f"/boot/grub2/grubenv:3 (load_env at grub.cfg:{line_of(text, 'load_env')})"
    assert run.env["tuned_params"] == "transparent_hugepages=never"


def test_insights_sample_entry_boots_without_kernelopts_set_after_blscfg(make_root):
    # issue #10 section 2: not "$kernelopts is not defined anywhere": it is defined, too late
    text = INSIGHTS_CFG.read_text()
    cfg = resolve(make_root, insights_tree())
    assert cfg.loader == "grub2-bls" and cfg.entry is not None and cfg.entry.entry_id == INSIGHTS_ID
    assert cfg.entry.options == "$kernelopts $tuned_params"
    assert cfg.entry.cmdline == ""  # what GRUB's blscfg builds: both variables expand to nothing
    assert cfg.unresolved == ()
    assert effective_params(cfg) == []  # known, and empty: no root=, no noapic
    assert not any("not defined" in p for p in cfg.problems)
    blscfg_at = f"/boot/grub2/grub.cfg:{line_of(text, 'blscfg') + 1}"
    load_env_at = f"/boot/grub2/grub.cfg:{line_of(text, 'load_env')}"
    entry = f"/boot/loader/entries/{INSIGHTS_ID}.conf:5"
    assert (
        f"{entry}: $kernelopts is not set yet where blscfg runs ({blscfg_at}); it is set only afterwards, at "
        f"/boot/grub2/grubenv:3 (load_env at {load_env_at}), but GRUB's blscfg expands an entry's options when "
        "it creates the entry (expand_val in grub-core/commands/blscfg.c), so this entry boots without it"
    ) in cfg.problems
    assert (
        f"{entry}: $tuned_params is '' where blscfg runs ({blscfg_at}); it is set to "
        f"'transparent_hugepages=never' only afterwards, at /boot/grub2/grubenv:6 (load_env at {load_env_at}), "
        "which this entry does not get: GRUB's blscfg expands an entry's options when it creates the entry"
    ) in cfg.problems
    assert "$kernelopts set only after blscfg: not in its command line" in cfg.summary
    assert not cfg.summary.endswith("boot parameters unknown")
    assert any("default not set: GRUB boots the first entry" in e.observed for e in cfg.provenance)


def test_insights_sample_without_grubenv_the_guarded_fallback_is_too_late(make_root):
    text = INSIGHTS_CFG.read_text()
    cfg = resolve(make_root, insights_tree(boot__grub2__grubenv=None))
    assert cfg.entry.cmdline == "" and cfg.unresolved == ()
    fallback = f"/boot/grub2/grub.cfg:{line_of(text, 'set kernelopts=')}"
    assert any("$kernelopts is not set yet where blscfg runs" in p and f"only afterwards, at {fallback}," in p
               for p in cfg.problems)
    assert "transparent_hugepage=never" not in cfg.entry.cmdline


def test_insights_sample_with_the_load_env_rhel80_00_header_writes(make_root):
    # rhboot grub2 rhel-8.0.0 util/grub.d/00_header.in writes this block right after "set pager=1", and
    # its 10_linux.in writes "insmod blscfg / blscfg / if [ -s $prefix/grubenv ]; then load_env; fi":
    # the sample's order, with grubenv loaded a first time before blscfg
    header = (
        "set pager=1\n\nif [ -f ${config_directory}/grubenv ]; then\n  load_env -f ${config_directory}/grubenv\n"
        "elif [ -s $prefix/grubenv ]; then\n  load_env\nfi\n"
    )
    text = INSIGHTS_CFG.read_text().replace("set pager=1\n", header, 1)
    cfg = resolve(make_root, insights_tree(**{"boot__grub2__grub.cfg": text}))
    # grubenv's kernelopts, and 00_tuned's tuned_params="" (set after the first load_env)
    assert cfg.entry.cmdline == INSIGHTS_KERNELOPTS
    assert last(effective_params(cfg), "noapic") == "" and cfg.unresolved == ()  # noapic is there
    assert "options expanded from /boot/grub2/grubenv ($kernelopts); /boot/grub2/grub.cfg ($tuned_params)" in (
        cfg.summary
    )
    # grubenv's tuned_params comes back with the second load_env, after blscfg: it does not reach the entry
    assert any(
        "$tuned_params is '' where blscfg runs" in p and "'transparent_hugepages=never' only afterwards" in p
        for p in cfg.problems
    )
    assert not any("$kernelopts" in p for p in cfg.problems)  # the second load_env does not change it


def test_custom_cfg_reaches_menuentries_but_not_bls_entries(make_root):
    # 41_custom sources custom.cfg at the very end of every generated grub.cfg: what it sets exists
    # when a menuentry boots, but after blscfg has expanded its entries' options
    rhel7 = (DATA / "rhel72-grub.cfg").read_text().replace("LANG=en_US.UTF-8\n", "LANG=en_US.UTF-8 $tuned_params\n")
    custom = 'set tuned_params="isolcpus=2-3 nohz_full=2-3"\n'
    spec = {
        "boot/grub2/grub.cfg": rhel7,
        "boot/grub2/grubenv": grubenv(saved_entry="1"),
        "boot/grub2/custom.cfg": custom,
    }
    cfg = resolve(make_root, spec)
    assert cfg.entry.kind == "menuentry" and cfg.entry.index == "1"
    assert cfg.entry.cmdline.endswith("LANG=en_US.UTF-8 isolcpus=2-3 nohz_full=2-3")
    assert not any("tuned_params" in p for p in cfg.problems)

    el8 = {
        "boot/grub2/grub.cfg": DATA / "el8-bls-grub.cfg",
        "boot/grub2/grubenv": DATA / "el8-grubenv",
        "boot/grub2/custom.cfg": custom,
        "boot/loader/entries/6fa25ca775f64accb0d3e53f0e4e6e92-5.16.9-custom.conf": (
            DATA / "bls-rocky8.5-6fa25ca775f64accb0d3e53f0e4e6e92-5.16.9-custom.conf"
        ),
    }
    cfg = resolve(make_root, el8)
    assert cfg.entry.kind == "bls" and "isolcpus" not in cfg.entry.cmdline
    assert cfg.entry.cmdline.endswith("hugepagesz=1G hugepages=8")
    assert cfg.unresolved == ()
    assert any(
        "$tuned_params is not set yet where blscfg runs" in p and "only afterwards, at /boot/grub2/custom.cfg:1" in p
        for p in cfg.problems
    )


# -- menu entries: the body runs when the entry boots ---------------------------------------------------


def test_menuentry_body_sees_the_variables_as_the_file_leaves_them():
    text = "set opts=early\nmenuentry 'A' {\n linux /vmlinuz $opts\n}\nset opts=late\n"
    run = run_grub_script(parse_grub_script(text), label="c", files=Files())
    (entry,) = run.menu
    assert isinstance(entry, MenuEntry)
    k = entry_kernel(entry, env=run.env, files=Files())
    assert k is not None and k.cmdline == "late"


def test_ubuntu_sample_boots_its_first_entry_with_the_written_line(make_root):
    for efi in (None, True, False):
        cfg = resolve(make_root, ubuntu_tree(), efi=efi)
        assert cfg.loader == "grub2" and cfg.entry.title == "Ubuntu" and cfg.entry.index == "0"
        assert cfg.entry.cmdline == "root=LABEL=cloudimg-rootfs ro console=tty1 console=ttyS0"
        assert cfg.unresolved == () and cfg.problems == () and cfg.stale == ()


def test_ubuntu_gfxmode_function_sets_vt_handoff_when_the_entry_boots(make_root):
    # the entry calls "gfxmode $linux_gfx_mode" before its linux line; the function sets $vt_handoff.
    # On UEFI, gfxblacklist.txt exists and grub_platform is not pc: linux_gfx_mode=keep
    cfg = resolve(make_root, ubuntu_tree(**{"boot/grub/grub.cfg": ubuntu_splash_cfg()}), efi=True)
    assert cfg.entry.cmdline == "root=LABEL=cloudimg-rootfs ro quiet splash vt.handoff=7"
    assert cfg.unresolved == () and cfg.problems == ()
    # on BIOS, "hwmatch ${prefix}/gfxblacklist.txt 3" decides: hostaudit cannot, and says so
    cfg = resolve(make_root, ubuntu_tree(**{"boot/grub/grub.cfg": ubuntu_splash_cfg()}), efi=False)
    assert cfg.unresolved == ()
    text = ubuntu_splash_cfg()
    entry_line = line_of(text, "splash $vt_handoff")
    assert cfg.problems == (
        f"/boot/grub/grub.cfg:{entry_line}: $vt_handoff is set when the entry boots from a value that depends "
        "on $linux_gfx_mode, which hostaudit cannot evaluate (linux_gfx_mode is set under an undecidable "
        f"condition at /boot/grub/grub.cfg:{line_of(text, 'elif hwmatch') + 2})",
    )
    # and a recordfail left in grubenv makes it text: no handoff, certainly
    cfg = resolve(
        make_root,
        ubuntu_tree(**{"boot/grub/grub.cfg": ubuntu_splash_cfg(), "boot/grub/grubenv": grubenv(recordfail="1")}),
        efi=False,
    )
    assert cfg.entry.cmdline == "root=LABEL=cloudimg-rootfs ro quiet splash" and cfg.problems == ()


def test_ubuntu_submenu_entry_boots_in_the_submenus_context(make_root):
    # grub-reboot "1>0": the first entry of "Advanced options for Ubuntu"; the submenu's context has the
    # exported linux_gfx_mode and the (global) gfxmode function
    cfg = resolve(
        make_root,
        ubuntu_tree(**{"boot/grub/grub.cfg": ubuntu_splash_cfg(), "boot/grub/grubenv": grubenv(next_entry="1>0")}),
        efi=True,
    )
    assert cfg.entry.index == "1>0" and cfg.entry.title == "Ubuntu, with Linux 5.15.0-100-generic"
    assert cfg.entry.cmdline == "root=LABEL=cloudimg-rootfs ro quiet splash vt.handoff=7"
    assert cfg.unresolved == () and cfg.problems == ()


def test_ubuntu_submenu_context_holds_exported_variables_only():
    text = UBUNTU_CFG.read_text()
    files = Files({"/boot/grub/gfxblacklist.txt": "x"})
    run = run_grub_script(parse_grub_script(text), label="grub.cfg", files=files, platform="efi",
                          env={"prefix": "/boot/grub", "config_directory": "/boot/grub"})
    sub = run.menu[1]
    assert isinstance(sub, Submenu) and sub.context is not None
    ctx = sub.context.env
    assert ctx["menuentry_id_option"] == "--id" and ctx["linux_gfx_mode"] == "keep"  # exported by the file
    assert ctx["prefix"] == "/boot/grub" and ctx["feature_menuentry_id"] == "y"  # exported by GRUB
    assert "timeout" in run.env and "timeout" not in ctx  # not exported
    assert sub.context.dropped["timeout"] == (
        f"set at grub.cfg:{line_of(text, 'set timeout_style=hidden') + 1}, "
        f"not exported before submenu 'Advanced options for Ubuntu' (grub.cfg:{line_of(text, 'submenu ')})"
    )
    assert sub.children[0].entry_id == (
        "gnulinux-5.15.0-100-generic-advanced-e8328184-226c-4e5e-9635-8142cc114051"
    )
    assert set(run.functions) >= {"gfxmode", "recordfail", "load_video"}


def test_submenu_body_runs_after_the_file_in_a_new_context():
    text = (
        "set plain=top\n"
        "export shared\n"
        "set shared=x\n"
        "submenu 'S' {\n"
        "  set inner=from-body\n"
        "  menuentry 'E' {\n   linux /vmlinuz $inner $shared $plain $later\n  }\n"
        "}\n"
        "set later=after\n"
        "export later\n"
    )
    run = run_grub_script(parse_grub_script(text), label="c", files=Files())
    (sub,) = run.menu
    assert isinstance(sub, Submenu) and sub.context is not None
    k = entry_kernel(sub.children[0], env=sub.context.env, files=Files())
    # upstream GRUB: the body's own set, exported variables, also one exported after the submenu
    assert k is not None and k.cmdline == "from-body x after" and k.undefined == ("plain",)
    assert sub.context.dropped["plain"] == "set at c:1, not exported before submenu 'S' (c:4)"
    assert "inner" not in run.env  # the submenu's context is its own
    # Fedora/RHEL builds copy every variable into the new context
    run = run_grub_script(parse_grub_script(text), label="c", files=Files(), export_all=True)
    k = entry_kernel(run.menu[0].children[0], env=run.menu[0].context.env, files=Files())
    assert k is not None and k.cmdline == "from-body x top after"


def test_resolver_reports_a_variable_a_submenu_does_not_get(make_root):
    text = (
        "set default='0>0'\nset opts=intel_iommu=on\n"
        "submenu 'S' {\n  menuentry 'E' {\n   linux /vmlinuz-6 root=/dev/sda1 ro $opts\n  }\n}\n"
    )
    cfg = resolve(make_root, {"boot/grub/grub.cfg": text})
    assert cfg.entry.index == "0>0" and cfg.entry.cmdline == "root=/dev/sda1 ro"
    assert cfg.unresolved == ("opts",) and effective_params(cfg) is None  # depends on the GRUB build
    assert any(
        "$opts is set at /boot/grub/grub.cfg:2, not exported before submenu 'S'" in p
        and "grub-core/normal/context.c" in p and "Fedora/RHEL builds copy every variable" in p
        for p in cfg.problems
    )


# -- configfile, export, functions ----------------------------------------------------------------------


def test_configfile_runs_the_file_in_a_new_context():
    stub = (
        "set mine=stub\nset prefix=/boot/grub2\nexport exported_one\nset exported_one=yes\n"
        "configfile /boot/grub2/grub.cfg\n"
    )
    real = "menuentry 'A' {\n linux /vmlinuz $mine $exported_one $prefix\n}\n"
    run = run_grub_script(parse_grub_script(stub), label="stub", files=Files({"/boot/grub2/grub.cfg": real}))
    assert "mine" not in run.env and run.env["exported_one"] == "yes" and run.env["prefix"] == "/boot/grub2"
    assert run.dropped["mine"] == "set at stub:1, not exported before 'configfile' at stub:5"
    k = entry_kernel(run.menu[0], env=run.env, files=Files())
    assert k is not None and k.cmdline == "yes /boot/grub2" and k.undefined == ("mine",)
    # "source" stays in the same context
    run = run_grub_script(
        parse_grub_script(stub.replace("configfile", "source")), label="stub",
        files=Files({"/boot/grub2/grub.cfg": real}),
    )
    assert run.env["mine"] == "stub" and run.dropped == {}


def test_export_of_an_unset_variable_sets_it_empty():
    run = run_grub_script(parse_grub_script("export foo\n"), label="c", files=Files())
    assert run.env["foo"] == "" and run.origins["foo"] == "c:1 (export)" and "foo" in run.exported


def test_functions_run_when_called_with_their_arguments():
    text = (
        "function setopts {\n  set opts=\"${1}\"\n  if [ \"${2}\" = late ]; then return; fi\n  set second=${2}\n}\n"
        "setopts hugepages=8 two\n"
        "menuentry 'A' {\n setopts \"quiet splash\" late\n linux /vmlinuz $opts $second\n}\n"
    )
    run = run_grub_script(parse_grub_script(text), label="c", files=Files())
    assert run.env["opts"] == "hugepages=8" and run.env["second"] == "two"
    assert "1" not in run.env and "#" not in run.env  # arguments are bound for the call only
    k = entry_kernel(run.menu[0], env=run.env, files=Files(), functions=run.functions)
    assert k is not None and k.cmdline == "quiet splash two"  # "return" ended the function only


def test_function_called_before_its_definition_does_nothing():
    text = "early\nfunction early {\n set x=1\n}\n"
    run = run_grub_script(parse_grub_script(text), label="c", files=Files())
    assert "x" not in run.env


@pytest.mark.parametrize("calls", ["f; f; f; f", "f"])
def test_hostile_function_recursion_ends(calls):
    text = f"function f {{\n {calls}\n set x=1\n}}\nf\nmenuentry 'A' {{\n f\n linux /vmlinuz $x\n}}\n"
    run = run_grub_script(parse_grub_script(text), label="c", files=Files())
    k = entry_kernel(run.menu[0], env=run.env, files=Files(), functions=run.functions)
    assert k is not None and k.cmdline == "1"


# -- the default entry's evidence ----------------------------------------------------------------------


def test_literal_default_equal_to_saved_entry_is_not_credited_to_grubenv(make_root):
    # issue #10: GRUB_DEFAULT=2 writes set default="2"; grubenv's saved_entry=2 is a coincidence
    text = (DATA / "rhel72-grub.cfg").read_text().replace('set default="${saved_entry}"', 'set default="2"')
    cfg = resolve(make_root, {"boot/grub2/grub.cfg": text, "boot/grub2/grubenv": grubenv(saved_entry="2")})
    assert cfg.entry.index == "2"
    (observed,) = [e.observed for e in cfg.provenance if e.observed.startswith("default=")]
    at = line_of(text, 'set default="2"')
    assert observed == f"default='2' (set at /boot/grub2/grub.cfg:{at}) -> menu position 2"
    # the generated set default="${saved_entry}" is credited to grubenv
    cfg = resolve(
        make_root, {"boot/grub2/grub.cfg": DATA / "rhel72-grub.cfg", "boot/grub2/grubenv": grubenv(saved_entry="2")}
    )
    (observed,) = [e.observed for e in cfg.provenance if e.observed.startswith("default=")]
    assert observed.endswith("= ${saved_entry} from /boot/grub2/grubenv:2 -> menu position 2")


def test_default_records_the_variables_it_was_expanded_from():
    text = (DATA / "rhel72-grub.cfg").read_text()
    files = Files({"/boot/grub2/grubenv": grubenv(saved_entry="1", next_entry="2")})
    run = run_grub_script(parse_grub_script(text), label="grub.cfg", files=files, env={"prefix": "/boot/grub2"})
    assert run.derived["default"] == ("next_entry",)
    run = run_grub_script(parse_grub_script('set default="2"\n'), label="c", files=Files())
    assert run.derived["default"] == ()
