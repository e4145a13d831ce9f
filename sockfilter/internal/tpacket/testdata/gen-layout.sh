#!/bin/sh
# gen-layout.sh writes layout.golden: the size of each kernel struct that
# tpacket reads from the ring, and the byte offset of each member, from the
# running kernel's BTF. TestLayout checks the Go structs in layout.go
# against it.
#
# Regenerate (needs bpftool and /sys/kernel/btf/vmlinux):
#   sh sockfilter/internal/tpacket/testdata/gen-layout.sh > sockfilter/internal/tpacket/testdata/layout.golden
set -eu
bpftool btf dump file /sys/kernel/btf/vmlinux format raw | awk '
# Types: "[id] KIND name size=N vlen=M", members indented below.
/^\[/ {
	id = substr($1, 2, length($1) - 2); kind[id] = $2; name[id] = $3
	for (i = 4; i <= NF; i++) if ($i ~ /^size=/) size[id] = substr($i, 6)
	cur = id; n[id] = 0; next
}
/^\t/ && cur != "" {
	m = ++n[cur]; mname[cur, m] = $1
	for (i = 2; i <= NF; i++) {
		if ($i ~ /^type_id=/) mtype[cur, m] = substr($i, 9)
		if ($i ~ /^bits_offset=/) moff[cur, m] = substr($i, 13)
	}
}
function unquote(s) { gsub("\047", "", s); return s }
END {
	split("tpacket3_hdr tpacket_hdr_variant1 tpacket_block_desc tpacket_hdr_v1 tpacket_bd_ts sockaddr_ll", want, " ")
	for (w = 1; w in want; w++) {
		id = ""
		for (t in kind) if (kind[t] == "STRUCT" && unquote(name[t]) == want[w]) id = t
		if (id == "") { print "no struct " want[w] > "/dev/stderr"; exit 1 }
		printf "%s size=%d\n", want[w], size[id]
		for (m = 1; m <= n[id]; m++) {
			nm = unquote(mname[id, m]); t = mtype[id, m]
			# An anonymous union is named after its first member.
			if (nm == "(anon)" && kind[t] == "UNION") nm = unquote(mname[t, 1])
			printf "\t%s %d\n", nm, moff[id, m] / 8
		}
	}
}'
