#!/bin/sh
# gen-layout.sh writes layout.golden: the byte offset of every member of
# the kernel structs that internal/sys mirrors, read from the running
# kernel's BTF. TestLayout checks the Go structs against it.
#
# Regenerate (needs bpftool and /sys/kernel/btf/vmlinux):
#   sh internal/sys/testdata/gen-layout.sh > internal/sys/testdata/layout.golden
set -eu
dir=$(dirname "$0")
bpftool btf dump file /sys/kernel/btf/vmlinux format raw |
	awk -f "$dir/../../testutil/btf/layout.awk" -f "$dir/layout.awk"
