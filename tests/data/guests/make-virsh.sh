#!/bin/sh
# Regenerates the virsh-*.xml files of this directory: each virsh-input/NAME.xml is defined in
# libvirt's test driver and dumped back as libvirt formats it (virsh 9.0.0, Debian libvirt-clients).
# The test driver keeps state per connection, so define, start and dumpxml share one virsh session.
# host-model-running is started first so that its dump is a running domain's (id='…').
set -eu
cd "$(dirname "$0")"
for f in virsh-input/*.xml; do
    name=$(sed -n "s|.*<name>\(.*\)</name>.*|\1|p" "$f" | head -1)
    out=$(basename "$f" .xml)
    start=""
    case "$out" in *-running) start="start $name;" ;; esac
    virsh -q -c test:///default "define $f; $start dumpxml $name" | sed '/^Domain .* \(defined\|started\)/d' \
        | sed "s/<uuid>[^<]*</<uuid>00000000-0000-4000-8000-000000000000</" > "virsh-$out.xml"
done
