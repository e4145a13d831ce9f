# The structs of internal/sys, for gen-layout.sh: the parts of union
# bpf_attr each command reads, and the info structs.
END {
	attr = find("UNION", "bpf_attr")
	for (m = 1; m <= n[attr]; m++) {
		t = mtype[attr, m]; first = mname[t, 1]
		if (first == "prog_type") dump("ProgLoadAttr", t)
		if (mname[attr, m] == "test") dump("ProgTestRunAttr", t)
		if (mname[attr, m] == "info") dump("ObjGetInfoByFDAttr", t)
		if (first == "map_type") dump("MapCreateAttr", t)
		if (first == "map_fd" && mname[t, 2] == "key") dump("MapElemAttr", t)
		if (mname[attr, m] == "batch") dump("MapBatchAttr", t)
		if (first == "pathname") dump("ObjPinAttr", t)
	}
	dump("ProgInfo", find("STRUCT", "bpf_prog_info"))
	dump("MapInfo", find("STRUCT", "bpf_map_info"))
}
