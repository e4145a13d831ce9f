# layout.awk reads `bpftool btf dump file /sys/kernel/btf/vmlinux format raw`
# and gives the END block of the awk program run after it (a second -f
# file) two functions: find(kind, name), the id of a named type, and
# dump(label, id), which prints the type's size and the byte offset of each
# member as the layout golden files hold them:
#
#	Label size=N
#		member offset
#
# The gen-layout.sh scripts of internal/sys and sockfilter/internal/tpacket
# run it; their TestLayout tests check Go structs against what they write.

# Types: "[id] KIND 'name' size=N vlen=M", members indented below.
/^\[/ {
	id = substr($1, 2, length($1) - 2); kind[id] = $2; name[id] = unquote($3)
	for (i = 4; i <= NF; i++) if ($i ~ /^size=/) size[id] = substr($i, 6)
	cur = id; n[id] = 0; next
}
/^\t/ && cur != "" {
	m = ++n[cur]; mname[cur, m] = unquote($1)
	for (i = 2; i <= NF; i++) {
		if ($i ~ /^type_id=/) mtype[cur, m] = substr($i, 9)
		if ($i ~ /^bits_offset=/) moff[cur, m] = substr($i, 13)
	}
}

function unquote(s) { gsub("\047", "", s); return s }

# find returns the id of the type of that kind and name, or exits with an
# error.
function find(k, nm,    t) {
	for (t in kind) if (kind[t] == k && name[t] == nm) return t
	print "no " k " " nm " in the kernel's BTF" > "/dev/stderr"
	exit 1
}

function dump(label, id,    m, t, nm) {
	printf "%s size=%d\n", label, size[id]
	for (m = 1; m <= n[id]; m++) {
		nm = mname[id, m]; t = mtype[id, m]
		# An anonymous union member is named after its first member.
		if (nm == "(anon)" && kind[t] == "UNION") nm = mname[t, 1]
		printf "\t%s %d\n", nm, moff[id, m] / 8
	}
}
