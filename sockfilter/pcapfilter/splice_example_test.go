package pcapfilter_test

import (
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

// A filter for a tc program (BPF_PROG_TYPE_SCHED_CLS), with direct packet
// access: the program has loaded skb->data into r2 and skb->data_end into
// r3, and keeps its context in r6; the filter jumps to the program's
// "drop" when the packet matches, and falls through when it does not.
// Each load is checked against data_end first, as the verifier requires,
// except where an earlier check covers it; a packet too short for a load
// does not match.
func ExampleCompileSplice() {
	filter, err := pcapfilter.CompileSplice("ip and udp", packet.LinkEthernet, &pcapfilter.SpliceOptions{
		Access:      pcapfilter.DirectAccess,
		PacketStart: asm.R2, PacketEnd: asm.R3,
		Context: asm.R6, SkbContext: true,
		Match: "drop",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(filter)
	// Output:
	// 	r0 = r2
	// 	r0 += 14
	// 	if r0 > r3 goto pcapfilter._end
	// 	r0 = *(u16 *)(r2 +12)
	// 	r0 = be16 r0
	// 	if w0 != 0x800 goto pcapfilter._end
	// 	r0 = r2
	// 	r0 += 24
	// 	if r0 > r3 goto pcapfilter._end
	// 	r0 = *(u8 *)(r2 +23)
	// 	if w0 == 0x11 goto drop
	// pcapfilter._end:
	// 	goto pc+0
}

// A filter for a program on a socket buffer without direct packet access:
// it reads the packet with bpf_skb_load_bytes from the context in r6, and
// leaves its verdict in r0 (result mode: no Match or NoMatch label).
func ExampleCompileSplice_skbLoadBytes() {
	filter, err := pcapfilter.CompileSplice("arp", packet.LinkEthernet, &pcapfilter.SpliceOptions{
		Access:  pcapfilter.SkbLoadBytes,
		Context: asm.R6,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(filter)
	// Output:
	// 	r2 = 12
	// 	r1 = r6
	// 	r3 = r10
	// 	r3 += -8
	// 	r4 = 2
	// 	call bpf_skb_load_bytes#26
	// 	if r0 != 0x0 goto pcapfilter._nomatch
	// 	r0 = *(u16 *)(r10 -8)
	// 	r0 = be16 r0
	// 	if w0 == 0x806 goto pcapfilter._match
	// 	goto pcapfilter._nomatch
	// pcapfilter._match:
	// 	r0 = 1
	// 	goto pc+1
	// pcapfilter._nomatch:
	// 	r0 = 0
}

// A filter for a tracing program on a kernel function that takes a
// socket buffer (a kprobe, fentry or raw tracepoint on skb functions, as
// cilium/pwru attaches): the address of the struct sk_buff is in r6, and
// the filter reads the frame from skb->head + skb->mac_header with
// bpf_probe_read_kernel, up to the end of the linear data. Layout comes
// from the kernel's BTF (KernelSkbLayout); here, Linux 6.18's on x86-64.
// The filter keeps its own values on the stack below the 16 bytes the
// program uses.
func ExampleCompileSplice_probeReadKernel() {
	layout := pcapfilter.SkbLayout{Head: 192, Tail: 184, DataLen: 116, MACHeader: 182, NetworkHeader: 180}
	filter, err := pcapfilter.CompileSplice("greater 1000", packet.LinkEthernet, &pcapfilter.SpliceOptions{
		Access:      pcapfilter.ProbeReadKernel,
		Context:     asm.R6,
		Layout:      layout,
		StackOffset: 16,
		Match:       "trace", NoMatch: "out",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(filter)
	// Output:
	// 	r3 = r6
	// 	r3 += 176
	// 	r1 = r10
	// 	r1 += -40
	// 	r2 = 24
	// 	call bpf_probe_read_kernel#113
	// 	if r0 != 0x0 goto out
	// 	r1 = *(u16 *)(r10 -34)
	// 	if r1 == 0xffff goto out
	// 	r2 = *(u64 *)(r10 -24)
	// 	r1 += r2
	// 	*(u64 *)(r10 -48) = r1
	// 	r3 = *(u32 *)(r10 -32)
	// 	r3 += r2
	// 	*(u64 *)(r10 -56) = r3
	// 	r3 = r6
	// 	r3 += 116
	// 	r1 = r10
	// 	r1 += -64
	// 	r2 = 4
	// 	call bpf_probe_read_kernel#113
	// 	if r0 != 0x0 goto out
	// 	r1 = *(u64 *)(r10 -56)
	// 	r2 = *(u64 *)(r10 -48)
	// 	r1 -= r2
	// 	r2 = *(u32 *)(r10 -64)
	// 	r1 += r2
	// 	w8 = w1
	// 	if w8 >= 0x3e8 goto trace
	// 	goto out
}

// A filter for a packet that starts at its network header, as in a
// cgroup_skb program or tc on a tun device: it is compiled for raw IP, and
// a filter that needs the link-layer header is refused.
func ExampleCompileSplice_networkLayer() {
	opts := &pcapfilter.SpliceOptions{Access: pcapfilter.DirectAccess, PacketStart: asm.R2, PacketEnd: asm.R3}
	filter, err := pcapfilter.CompileSplice("ip6", packet.LinkRawIP, opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(filter)
	_, err = pcapfilter.CompileSplice("arp", packet.LinkRawIP, opts)
	fmt.Println(errors.Is(err, pcapfilter.ErrLinkLayer))
	fmt.Println(err)
	// Output:
	// 	r0 = r2
	// 	r0 += 1
	// 	if r0 > r3 goto pcapfilter._nomatch
	// 	r0 = *(u8 *)(r2 +0)
	// 	w0 &= 240
	// 	if w0 == 0x60 goto pcapfilter._match
	// 	goto pcapfilter._nomatch
	// pcapfilter._match:
	// 	r0 = 1
	// 	goto pc+1
	// pcapfilter._nomatch:
	// 	r0 = 0
	// true
	// splice "arp": the filter needs the link-layer header: it matches only frames that carry no IPv4 or IPv6 packet; compile it for packet.LinkEthernet where the packet starts at its link-layer header
}

// Two filters in one program, with their own label prefixes: the first
// falls through to the second when it does not match, so the program
// drops what either matches. (The program around them would load r2 and
// r3 from its context first.)
func ExampleSplice() {
	var prog asm.Instructions
	for i, expr := range []string{"icmp", "udp port 53"} {
		insns, err := pcapfilter.Compile(expr, packet.LinkEthernet)
		if err != nil {
			log.Fatal(err)
		}
		opts := &pcapfilter.SpliceOptions{
			Access:      pcapfilter.DirectAccess,
			PacketStart: asm.R2, PacketEnd: asm.R3,
			LabelPrefix: fmt.Sprintf("f%d.", i),
			Match:       "drop",
		}
		if i == 1 {
			opts.NoMatch = "pass"
		}
		filter, err := pcapfilter.Splice(insns, packet.LinkEthernet, opts)
		if err != nil {
			log.Fatal(err)
		}
		prog = append(prog, filter...)
	}
	prog = append(prog,
		asm.Mov.Imm(asm.R0, 0).WithLabel("pass"), asm.Exit(), // TC_ACT_OK
		asm.Mov.Imm(asm.R0, 2).WithLabel("drop"), asm.Exit()) // TC_ACT_SHOT
	if _, err := prog.Assemble(); err != nil {
		log.Fatal(err)
	}
	var labels []string
	for _, ins := range prog {
		if ins.Label != "" {
			labels = append(labels, ins.Label)
		}
	}
	fmt.Println(strings.Join(labels, " "))
	// Output:
	// f0._end f1.n6 f1.n3.tail pass drop
}
