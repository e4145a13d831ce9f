#!/bin/sh
# gen-layout.sh writes layout.golden: the size of each kernel struct that
# tpacket reads from the ring, and the byte offset of each member, from the
# running kernel's BTF. TestLayout checks the Go structs in layout.go
# against it.
#
# Regenerate (needs bpftool and /sys/kernel/btf/vmlinux):
#   sh sockfilter/internal/tpacket/testdata/gen-layout.sh > sockfilter/internal/tpacket/testdata/layout.golden
set -eu
dir=$(dirname "$0")
bpftool btf dump file /sys/kernel/btf/vmlinux format raw |
	awk -f "$dir/../../../../internal/testutil/btf/layout.awk" -f "$dir/layout.awk"
