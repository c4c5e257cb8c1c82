"""Helpers shared by the built-in checks: optional facts, distro-aware remedies, quoting."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TypeVar

from audit.errors import FactError, FactUnavailable
from audit.host.core import Host

T = TypeVar("T")

q = shlex.quote  # every value from the audited host goes through this before it enters a command


def maybe(host: Host, fn: Callable[[Host], T]) -> T | None:
    """A fact that is one source among several: absent is None (malformed still raises)."""
    try:
        return host.fact(fn)
    except FactUnavailable:
        return None


def maybe_value(get: Callable[[], T]) -> T | None:
    try:
        return get()
    except FactUnavailable:
        return None


def hint(get: Callable[[], T]) -> T | None:
    """A fact used only as a hint (the CPU vendor for a message or a module name): unknown or
    unusable both mean None, so a broken /proc/cpuinfo cannot turn a /dev/kvm check into an error."""
    try:
        return get()
    except (FactUnavailable, FactError):
        return None


def os_family(host: Host) -> str | None:
    """'debian', 'rhel', 'suse' or None, for remediation wording only."""
    from audit.host.facts import distro_family

    try:
        return host.fact(distro_family)
    except (FactUnavailable, FactError):
        return None


def stock_kernel_fix(host: Host) -> list[str]:
    """The honest remedy for a missing kernel option: boot a kernel that was built with it."""
    family = os_family(host)
    if family == "debian":
        return ["apt-get install linux-image-amd64   # Debian's stock kernel (Ubuntu: linux-generic)"]
    if family == "rhel":
        return ["dnf install kernel   # the distribution's stock kernel (yum on EL7)"]
    if family == "suse":
        return ["zypper install kernel-default"]
    return ["# install your distribution's stock kernel, or rebuild this one with the option enabled"]


def persist_module_fix(module: str) -> list[str]:
    return [f"modprobe {q(module)}", f"echo {q(module)} > /etc/modules-load.d/{q(module)}.conf"]
