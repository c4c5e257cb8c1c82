"""Guests against destinations: libvirt domain XML (audit.guest.domain) judged against a host's CPU
and huge page pools (audit.guest.judge) for ``hostaudit guest check``."""
