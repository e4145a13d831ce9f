// Package bench compares purebpf with the libraries it is measured
// against, on the same input in the same run: packet.Parse with
// gopacket's DecodingLayerParser on the same frames (parse_test.go), and
// sockfilter.RingBufReader with github.com/cilium/ebpf/ringbuf's Reader on
// the same BPF ring buffer filled by the same program (ringbuf_test.go,
// Linux and root only). splice_test.go shows the whole path of a filter
// spliced into a program built with github.com/cilium/ebpf, as the tools
// that embed pcap filters build theirs: pcapfilter.CompileSplice, the
// conversion to cilium's asm (through bytes, or instruction by
// instruction with the labels), ebpf.NewProgram and Program.Run (Linux
// and root only). It is a module of its own so that gopacket and
// cilium/ebpf stay out of purebpf's go.mod, and out of `go test ./...`
// run at the top of the repository. Run it with
//
//	cd internal/bench && go test -bench . -benchmem -count 5
package bench
