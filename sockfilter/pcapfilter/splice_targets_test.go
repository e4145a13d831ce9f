package pcapfilter

import (
	"encoding/binary"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/btf"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// The programs the tests splice filters into. They need no kernel to
// build: FuzzSplice checks them on every GOOS and loads them on Linux.

// Program types (enum bpf_prog_type).
const (
	progKprobe        uint32 = 2
	progSchedCLS      uint32 = 3
	progXDP           uint32 = 6
	progCgroupSKB     uint32 = 8
	progRawTracepoint uint32 = 17
)

// Offsets of struct __sk_buff's data and data_end, and of struct xdp_md's
// (include/uapi/linux/bpf.h).
const (
	skbData, skbDataEnd int16 = 76, 80
	xdpData, xdpDataEnd int16 = 0, 4
)

// exampleLayout is struct sk_buff's layout on Linux 6.18 x86-64, for the
// tests that need one without a kernel.
var exampleLayout = SkbLayout{Head: 192, Tail: 184, DataLen: 116, MACHeader: 182, NetworkHeader: 180}

// kernelTargets returns the layout of the running kernel's struct sk_buff
// and the BTF id of the kfunc bpf_cast_to_kern_ctx (Linux 6.2), which
// gives a tc program the struct sk_buff behind its context, for
// ProbeReadKernel under BPF_PROG_TEST_RUN; or exampleLayout, 0 and false
// where the kernel has no BTF or no such kfunc.
func kernelTargets() (SkbLayout, int32, bool) {
	layout, err := KernelSkbLayout()
	if err != nil {
		return exampleLayout, 0, false
	}
	spec, err := btf.LoadKernel()
	if err != nil {
		return exampleLayout, 0, false
	}
	id, err := spec.Find(btf.KindFunc, "bpf_cast_to_kern_ctx")
	if err != nil {
		return exampleLayout, 0, false
	}
	return layout, int32(id), true
}

// spliceTarget is a program a filter is spliced into: its type, the
// options, and the program around the filter.
type spliceTarget struct {
	name     string
	link     packet.LinkType
	progType uint32
	opts     SpliceOptions
	// wrap returns the whole program around the spliced filter.
	wrap func(filter asm.Instructions) asm.Instructions
	// match and noMatch are what the program returns.
	match, noMatch uint32
}

// Return codes of the wrappers: distinct, and allowed for their type
// (cgroup_skb returns 0 or 1; XDP_PASS is 2, XDP_DROP 1).
const (
	tcMatch, tcNoMatch = 7, 3
	xdpPass, xdpDrop   = 2, 1
)

// labelled appends the epilogues `match: r0 = m; exit` and `nomatch: r0 =
// n; exit` that a filter spliced with Match "match" and NoMatch "nomatch"
// jumps to.
func labelled(prologue, filter asm.Instructions, m, n int32) asm.Instructions {
	out := append(append(asm.Instructions{}, prologue...), filter...)
	return append(out,
		asm.Mov.Imm(asm.R0, m).WithLabel("match"), asm.Exit(),
		asm.Mov.Imm(asm.R0, n).WithLabel("nomatch"), asm.Exit())
}

// spliceTargets returns the programs the differential test splices
// filters into: each access mode, both starts, and registers other than
// Compile's, so that the allocation is exercised.
func spliceTargets(layout SkbLayout, cast int32) []spliceTarget {
	// tc: r6 = ctx, PacketStart r7, PacketEnd r8 (Compile's r7 and r8
	// go elsewhere), Context r6 for skb->len.
	tcDirect := func(start int32) func(asm.Instructions) asm.Instructions {
		return func(f asm.Instructions) asm.Instructions {
			pro := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1),
				asm.LoadMem(asm.R7, asm.R6, skbData, asm.Word), asm.LoadMem(asm.R8, asm.R6, skbDataEnd, asm.Word)}
			if start != 0 {
				pro = append(pro, asm.Add.Imm(asm.R7, start))
			}
			return labelled(pro, f, tcMatch, tcNoMatch)
		}
	}
	// Result mode: the filter sets r0 (or r9) to 1 or 0, the wrapper
	// returns it plus 1 (XDP) or as it is (cgroup_skb).
	result := func(pro asm.Instructions, res asm.Register, add int32) func(asm.Instructions) asm.Instructions {
		return func(f asm.Instructions) asm.Instructions {
			out := append(append(asm.Instructions{}, pro...), f...)
			return append(out, asm.Mov.Reg(asm.R0, res), asm.Add.Imm(asm.R0, add), asm.Exit())
		}
	}
	xdp := func(start int32) func(asm.Instructions) asm.Instructions {
		pro := asm.Instructions{asm.LoadMem(asm.R2, asm.R1, xdpData, asm.Word), asm.LoadMem(asm.R3, asm.R1, xdpDataEnd, asm.Word)}
		if start != 0 {
			pro = append(pro, asm.Add.Imm(asm.R2, start))
		}
		return result(pro, asm.R0, 1)
	}
	// ProbeReadKernel under tc: the struct sk_buff from
	// bpf_cast_to_kern_ctx, in r9; Context r1 is kept on the stack.
	probe := func(ctxReg asm.Register) func(asm.Instructions) asm.Instructions {
		return func(f asm.Instructions) asm.Instructions {
			pro := asm.Instructions{asm.CallKfunc(cast)}
			if ctxReg != asm.R0 {
				pro = append(pro, asm.Mov.Reg(ctxReg, asm.R0))
			}
			return labelled(pro, f, tcMatch, tcNoMatch)
		}
	}
	lab := func(o SpliceOptions) SpliceOptions { o.Match, o.NoMatch = "match", "nomatch"; return o }
	return []spliceTarget{
		{"tc/direct", packet.LinkEthernet, progSchedCLS,
			lab(SpliceOptions{Access: DirectAccess, PacketStart: asm.R7, PacketEnd: asm.R8, Context: asm.R6, SkbContext: true}),
			tcDirect(0), tcMatch, tcNoMatch},
		{"xdp/direct", packet.LinkEthernet, progXDP,
			SpliceOptions{Access: DirectAccess, PacketStart: asm.R2, PacketEnd: asm.R3, StackOffset: 8, LabelPrefix: "f."},
			xdp(0), xdpPass, xdpDrop},
		{"xdp/direct/pwru", packet.LinkEthernet, progXDP,
			SpliceOptions{Access: DirectAccess, PacketStart: asm.R4, PacketEnd: asm.R5, Working: []asm.Register{asm.R0, asm.R1, asm.R2, asm.R3}},
			func(f asm.Instructions) asm.Instructions {
				pro := asm.Instructions{asm.LoadMem(asm.R4, asm.R1, xdpData, asm.Word), asm.LoadMem(asm.R5, asm.R1, xdpDataEnd, asm.Word)}
				return result(pro, asm.R0, 1)(f)
			}, xdpPass, xdpDrop},
		{"tc/skb_load_bytes/few", packet.LinkEthernet, progSchedCLS,
			lab(SpliceOptions{Access: SkbLoadBytes, Context: asm.R9, Working: []asm.Register{asm.R7, asm.R8}}),
			func(f asm.Instructions) asm.Instructions {
				return labelled(asm.Instructions{asm.Mov.Reg(asm.R9, asm.R1)}, f, tcMatch, tcNoMatch)
			}, tcMatch, tcNoMatch},
		{"tc/skb_load_bytes", packet.LinkEthernet, progSchedCLS,
			SpliceOptions{Access: SkbLoadBytes, Context: asm.R1, Result: asm.R9, Working: []asm.Register{asm.R6, asm.R7, asm.R8, asm.R9}},
			result(nil, asm.R9, tcNoMatch), tcNoMatch + 1, tcNoMatch},
		{"tc/probe_read_kernel", packet.LinkEthernet, progSchedCLS,
			lab(SpliceOptions{Access: ProbeReadKernel, Context: asm.R0, Layout: layout}),
			probe(asm.R0), tcMatch, tcNoMatch},
		{"xdp/direct/raw", packet.LinkRawIP, progXDP,
			SpliceOptions{Access: DirectAccess, PacketStart: asm.R2, PacketEnd: asm.R3},
			xdp(wire.EthernetHeaderLen), xdpPass, xdpDrop},
		{"tc/direct/raw", packet.LinkRawIP, progSchedCLS,
			lab(SpliceOptions{Access: DirectAccess, PacketStart: asm.R7, PacketEnd: asm.R8}),
			tcDirect(wire.EthernetHeaderLen), tcMatch, tcNoMatch},
		{"cgroup_skb/direct/raw", packet.LinkRawIP, progCgroupSKB,
			SpliceOptions{Access: DirectAccess, PacketStart: asm.R2, PacketEnd: asm.R3, Context: asm.R6, SkbContext: true},
			func(f asm.Instructions) asm.Instructions {
				pro := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1),
					asm.LoadMem(asm.R2, asm.R6, skbData, asm.Word), asm.LoadMem(asm.R3, asm.R6, skbDataEnd, asm.Word)}
				return result(pro, asm.R0, 0)(f)
			}, 1, 0},
		{"cgroup_skb/skb_load_bytes/raw", packet.LinkRawIP, progCgroupSKB,
			SpliceOptions{Access: SkbLoadBytes, Context: asm.R6, LabelPrefix: "g_"},
			result(asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}, asm.R0, 0), 1, 0},
		{"tc/probe_read_kernel/raw", packet.LinkRawIP, progSchedCLS,
			lab(SpliceOptions{Access: ProbeReadKernel, Context: asm.R9, Layout: layout, StackOffset: 16, StackSize: 128}),
			probe(asm.R9), tcMatch, tcNoMatch},
	}
}

// runInput returns the data a target's program runs on for the packet
// p the oracle sees: an Ethernet frame as it is; a raw IP packet behind
// an Ethernet header, which tc and XDP see and cgroup_skb's test run
// takes off. Its ethertype is the one the packet's version gives, if the
// packet is long enough for the kernel's test run to take it as such
// (see errTooShort), else 0x88b5 (IEEE's for experiments): the filter
// does not read it.
func runInput(link packet.LinkType, p []byte) []byte {
	if link == packet.LinkEthernet {
		return p
	}
	et := uint16(0x88b5)
	switch {
	case len(p) >= 20 && p[0]>>4 == 4:
		et = wire.EtherTypeIPv4
	case len(p) >= 40 && p[0]>>4 == 6:
		et = wire.EtherTypeIPv6
	}
	b := make([]byte, wire.EtherTypeOff, wire.EthernetHeaderLen+len(p))
	copy(b, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2})
	b = binary.BigEndian.AppendUint16(b, et)
	return append(b, p...)
}
