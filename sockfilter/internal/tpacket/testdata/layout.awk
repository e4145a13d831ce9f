# The structs tpacket reads from the ring, for gen-layout.sh.
END {
	split("tpacket3_hdr tpacket_hdr_variant1 tpacket_block_desc tpacket_hdr_v1 tpacket_bd_ts sockaddr_ll", want, " ")
	for (w = 1; w in want; w++) dump(want[w], find("STRUCT", want[w]))
}
