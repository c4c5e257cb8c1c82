#!/usr/bin/env bash
# shellcheck disable=SC2016
# hostaudit remediation script: the fixes for the failed checks of this audit.
#
# host:      kvm01.example.org (image at /srv/images/kvm01)
# os:        Debian GNU/Linux 12 (bookworm)
# kernel:    6.1.0-18-amd64
# profile:   kvm-host
# audited:   2024-05-06T07:08:09Z
# generated: hostaudit 0.1.0
# findings:  3 failed of 12 checks
#
# hostaudit never runs this script. Read every command before running it as root on the
# audited host. Each section changes the running system first, then makes the change
# persistent, in the order its check gave. Warnings, waived and skipped checks are not here.
#
# This audit read the image at /srv/images/kvm01, not a running host: the commands act
# on the machine that runs them. Run them inside that system (chroot, or after booting it).

set -euo pipefail

if [[ "${EUID}" -ne 0 ]]; then
    echo 'hostaudit remediation: run this script as root (it changes system settings)' >&2
    exit 1
fi

# ----------------------------------------------------------------------------------------------
# [1/3] cpu.aes (medium): CPU has AES instructions (x86 AES-NI, arm64 Crypto Extensions)
# finding: CPU lacks aes
# read /proc/cpuinfo: Intel(R) Xeon(R) Gold 6132 CPU @ 2.60GHz (GenuineIntel); lacks aes (expected aes)
# why: AES-NI comes from the CPU.
# ----------------------------------------------------------------------------------------------
printf '==> %s\n' '[1/3] cpu.aes'
# no software fix: use a CPU with these features, or enable them in the firmware setup

# ----------------------------------------------------------------------------------------------
# [2/3] kernel.ksm (medium): Kernel supports same-page merging (KSM)
# finding: kernel 6.1.0-18-amd64 lacks CONFIG_KSM
# read /boot/config-6.1.0-18-amd64:4: # CONFIG_KSM is not set (expected CONFIG_KSM=y)
# why: Kernel options are fixed at build time: boot a kernel built with them.
# needs a reboot to take effect
# ----------------------------------------------------------------------------------------------
printf '==> %s\n' '[2/3] kernel.ksm'
dpkg-query -W -f='${db:Status-Status}' linux-image-amd64 2>/dev/null | grep -qx installed || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends linux-image-amd64   # Debian's stock kernel (Ubuntu: linux-generic)

# ----------------------------------------------------------------------------------------------
# [3/3] kvm.device (critical): /dev/kvm exists and is a character device
# finding: /dev/kvm does not exist: the KVM modules are not loaded
# read /dev/kvm: absent (expected character device)
# why: Loading the vendor module creates /dev/kvm; if it fails, check firmware VT-x/AMD-V.
# ----------------------------------------------------------------------------------------------
printf '==> %s\n' '[3/3] kvm.device'
modprobe kvm_intel
mkdir -p /etc/modules-load.d
echo kvm_intel > /etc/modules-load.d/kvm_intel.conf

# ----------------------------------------------------------------------------------------------
# A reboot is needed before these take effect: kernel.ksm
# ----------------------------------------------------------------------------------------------
echo 'hostaudit: done; reboot for these to take effect: kernel.ksm' >&2
