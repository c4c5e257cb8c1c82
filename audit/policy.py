"""What the audited host should look like: a profile, overridden by a policy file.

Profiles and policy files are TOML; ``extends`` names the profile a file starts from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from audit.model import Severity


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiver:
    reason: str
    expires: dt.date | None = None

    def active(self, today: dt.date) -> bool:
        return self.expires is None or today <= self.expires


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    profile: str = "kvm-host"
    # huge pages
    hugepages_required: bool = True
    hugepages_size: int | None = None  # bytes
    hugepages_count: int | None = None
    hugepages_max_memory_fraction: float = 0.9
    host_memory: int | None = None  # bytes; lets an image be judged against its target host
    # THP, KSM, swap, IOMMU
    thp_allowed: tuple[str, ...] = ("always", "madvise")
    ksm_mode: str = "on"  # on | off | any
    swap_ksm_factor: float = 1.0
    iommu_required: bool = True
    # CPU fleet gate
    cpu_required_model: str | None = None
    cpu_required_flags: tuple[str, ...] = ()
    # engine
    severity_overrides: dict[str, Severity] = field(default_factory=dict)
    disabled: tuple[str, ...] = ()  # check id globs
    waivers: dict[str, Waiver] = field(default_factory=dict)
    source: str = "built-in profile kvm-host"


DEFAULT_POLICY = Policy()
