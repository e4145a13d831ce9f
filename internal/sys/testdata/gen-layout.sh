#!/bin/sh
# gen-layout.sh writes layout.golden: the byte offset of every member of
# the kernel structs that internal/sys mirrors, read from the running
# kernel's BTF. TestLayout checks the Go structs against it.
#
# Regenerate (needs bpftool and /sys/kernel/btf/vmlinux):
#   sh internal/sys/testdata/gen-layout.sh > internal/sys/testdata/layout.golden
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
function dump(label, id,    m, t, nm) {
	printf "%s size=%d\n", label, size[id]
	for (m = 1; m <= n[id]; m++) {
		nm = mname[id, m]; gsub("\047", "", nm)
		t = mtype[id, m]
		# An anonymous union member is named after its first member.
		if (nm == "(anon)" && kind[t] == "UNION") { nm = mname[t, 1]; gsub("\047", "", nm) }
		printf "\t%s %d\n", nm, moff[id, m] / 8
	}
}
END {
	for (id in kind) {
		if (kind[id] == "UNION" && name[id] == "\047bpf_attr\047") attr = id
		if (kind[id] == "STRUCT" && name[id] == "\047bpf_prog_info\047") info = id
		if (kind[id] == "STRUCT" && name[id] == "\047bpf_map_info\047") mapinfo = id
	}
	for (m = 1; m <= n[attr]; m++) {
		t = mtype[attr, m]; first = mname[t, 1]
		if (first == "\047prog_type\047") dump("ProgLoadAttr", t)
		if (mname[attr, m] == "\047test\047") dump("ProgTestRunAttr", t)
		if (mname[attr, m] == "\047info\047") dump("ObjGetInfoByFDAttr", t)
		if (first == "\047map_type\047") dump("MapCreateAttr", t)
		if (first == "\047map_fd\047" && mname[t, 2] == "\047key\047") dump("MapElemAttr", t)
		if (mname[attr, m] == "\047batch\047") dump("MapBatchAttr", t)
		if (first == "\047pathname\047") dump("ObjPinAttr", t)
	}
	dump("ProgInfo", info)
	dump("MapInfo", mapinfo)
}'
