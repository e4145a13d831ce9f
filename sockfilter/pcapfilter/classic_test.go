package pcapfilter

import (
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// TestFromClassicRaw checks FromClassic, which keeps offsets relative to
// skb->data, on libpcap's programs for the expression list: under
// sockfilter.Program.Test skb->data is the network header, so its verdicts must be
// those of golang.org/x/net/bpf's VM on the frame less its Ethernet header.
func TestFromClassicRaw(t *testing.T) {
	testutil.RequirePrivileged(t)
	lp := testutil.NewLibpcap(t, testutil.LinkEthernet)
	frames := testutil.GenFrames(4, 500)
	for _, expr := range testutil.Expressions(t) {
		t.Run(expr, func(t *testing.T) {
			classic, err := lp.Compile(expr)
			if err != nil {
				t.Fatal(err)
			}
			vm := testutil.ClassicVM(t, classic)
			insns, err := FromClassic(classic)
			if err != nil {
				t.Fatal(err)
			}
			prog := loadForTest(t, insns, func() (*sockfilter.Program, error) { return sockfilter.Load(insns, nil) })
			for i, f := range frames {
				want := uint32(vm(f[wire.EthernetHeaderLen:]))
				got, err := prog.Test(f, packet.LinkEthernet)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if got != want {
					t.Fatalf("frame %d (% x): got %d, VM on the network header %d\n%v", i, f, got, want, insns)
				}
			}
		})
	}
}

// TestFromClassicSemantics runs hand-written programs that use what
// libpcap's do not (scratch memory, X arithmetic, division by zero, RetA,
// ExtLen, LoadMemShift keeping A) converted both ways, against the VM.
func TestFromClassicSemantics(t *testing.T) {
	testutil.RequirePrivileged(t)
	progs := map[string][]bpf.Instruction{
		"div by X=0 returns 0": {
			bpf.LoadConstant{Dst: bpf.RegX, Val: 0},
			bpf.LoadAbsolute{Off: 0, Size: 4},
			bpf.ALUOpX{Op: bpf.ALUOpDiv},
			bpf.RetConstant{Val: 1},
		},
		"mod by X=0 returns 0": {
			bpf.LoadAbsolute{Off: 0, Size: 1},
			bpf.ALUOpX{Op: bpf.ALUOpMod},
			bpf.RetConstant{Val: 1},
		},
		"X arithmetic and RetA": {
			bpf.LoadAbsolute{Off: 0, Size: 1},
			bpf.ALUOpConstant{Op: bpf.ALUOpOr, Val: 1},
			bpf.TAX{},
			bpf.LoadConstant{Dst: bpf.RegA, Val: 1000},
			bpf.ALUOpX{Op: bpf.ALUOpDiv},
			bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 7},
			bpf.TAX{},
			bpf.TXA{},
			bpf.RetA{},
		},
		"scratch memory": {
			bpf.LoadAbsolute{Off: 2, Size: 2},
			bpf.StoreScratch{Src: bpf.RegA, N: 15},
			bpf.LoadConstant{Dst: bpf.RegA, Val: 3},
			bpf.StoreScratch{Src: bpf.RegA, N: 0},
			bpf.LoadScratch{Dst: bpf.RegX, N: 15},
			bpf.LoadScratch{Dst: bpf.RegA, N: 0},
			bpf.ALUOpX{Op: bpf.ALUOpAdd},
			bpf.StoreScratch{Src: bpf.RegX, N: 7},
			bpf.LoadScratch{Dst: bpf.RegX, N: 7},
			bpf.ALUOpX{Op: bpf.ALUOpAdd},
			bpf.RetA{},
		},
		"unreachable instructions": {
			bpf.LoadAbsolute{Off: 0, Size: 1},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipTrue: 2},
			bpf.RetConstant{Val: 7},
			bpf.LoadAbsolute{Off: 4, Size: 4}, // no path reaches it
			bpf.RetA{},
		},

		"LoadMemShift keeps A": {
			bpf.LoadConstant{Dst: bpf.RegA, Val: 9},
			bpf.LoadMemShift{Off: 0},
			bpf.ALUOpX{Op: bpf.ALUOpAdd},
			bpf.RetA{},
		},
		"length, indirect loads, jumps": {
			bpf.LoadExtension{Num: bpf.ExtLen},
			bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: 60, SkipTrue: 1},
			bpf.RetConstant{Val: 0},
			bpf.LoadConstant{Dst: bpf.RegX, Val: 4},
			bpf.LoadIndirect{Off: 2, Size: 2},
			bpf.JumpIf{Cond: bpf.JumpBitsNotSet, Val: 0x10, SkipTrue: 2},
			bpf.NegateA{},
			bpf.RetA{},
			bpf.JumpIfX{Cond: bpf.JumpLessThan, SkipTrue: 0, SkipFalse: 1},
			bpf.RetConstant{Val: 5},
			bpf.Jump{Skip: 0},
			bpf.LoadExtension{Num: bpf.ExtLen},
			bpf.RetA{},
		},
	}
	frames := testutil.GenFrames(5, 300)
	for name, classic := range progs {
		t.Run(name, func(t *testing.T) {
			vm := testutil.ClassicVM(t, classic)
			raw, err := FromClassic(classic)
			if err != nil {
				t.Fatal(err)
			}
			link, err := FromClassicLinkRelative(classic)
			if err != nil {
				t.Fatal(err)
			}
			rawProg := loadForTest(t, raw, func() (*sockfilter.Program, error) { return sockfilter.Load(raw, nil) })
			linkProg := loadForTest(t, link, func() (*sockfilter.Program, error) { return sockfilter.Load(link, nil) })
			for i, f := range frames {
				got, err := rawProg.Test(f, packet.LinkEthernet)
				if err != nil {
					t.Fatal(err)
				}
				if want := uint32(vm(f[wire.EthernetHeaderLen:])); got != want {
					t.Fatalf("frame %d (% x): FromClassic's program returns %d, the VM on the network header %d\n%v", i, f, got, want, raw)
				}
				got, err = linkProg.Test(f, packet.LinkEthernet)
				if err != nil {
					t.Fatal(err)
				}
				if want := uint32(vm(f)); got != want {
					t.Fatalf("frame %d (% x): FromClassicLinkRelative's program returns %d, the VM %d\n%v", i, f, got, want, link)
				}
			}
		})
	}
}

// TestFromClassicKernelReading runs programs that golang.org/x/net/bpf
// reads otherwise than the kernel, or cannot run, against the values the
// kernel's conversion gives (TestFromClassicKernel checks it against the
// kernel itself): raw is FromClassic's result under Program.Test, where
// skb->data is the network header, link FromClassicLinkRelative's.
func TestFromClassicKernelReading(t *testing.T) {
	testutil.RequirePrivileged(t)
	frame := testutil.GenFrames(7, 1)[0]
	frame = append(append(append([]byte{}, frame[:12]...), 0x08, 0x00), make([]byte, 46)...) // IPv4
	n := uint32(len(frame))
	tests := []struct {
		name      string
		prog      []bpf.Instruction
		raw, link uint32
	}{
		{"ldx #len loads X", []bpf.Instruction{bpf.RawInstruction{Op: 0x81}, bpf.TXA{}, bpf.RetA{}}, n - 14, n},
		{"ld #len", []bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtLen}, bpf.RetA{}}, n - 14, n},
		{"ldb #proto is ld #proto", []bpf.Instruction{bpf.RawInstruction{Op: 0x30, K: 0xfffff000}, bpf.RetA{}}, 0x800, 0x800},
		{"ldh #proto is ld #proto", []bpf.Instruction{bpf.RawInstruction{Op: 0x28, K: 0xfffff000}, bpf.RetA{}}, 0x800, 0x800},
		{"ALU_XOR_X", []bpf.Instruction{
			bpf.LoadConstant{Dst: bpf.RegA, Val: 0xf0f0},
			bpf.LoadConstant{Dst: bpf.RegX, Val: 0xff},
			bpf.LoadExtension{Num: 40}, // SKF_AD_ALU_XOR_X: A ^= X
			bpf.RetA{},
		}, 0xf00f, 0xf00f},
		{"ret #-1 after ret #0 is unreachable", []bpf.Instruction{bpf.RetConstant{Val: 0xffffffff}, bpf.RetConstant{Val: 0}}, 0xffffffff, 0xffffffff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				conv func([]bpf.Instruction) (asm.Instructions, error)
				want uint32
			}{{FromClassic, tt.raw}, {FromClassicLinkRelative, tt.link}} {
				insns, err := c.conv(tt.prog)
				if err != nil {
					t.Fatal(err)
				}
				p := loadForTest(t, insns, func() (*sockfilter.Program, error) { return sockfilter.Load(insns, nil) })
				got, err := p.Test(frame, packet.LinkEthernet)
				if err != nil {
					t.Fatal(err)
				}
				if got != c.want {
					t.Errorf("returns %#x, want %#x\n%v", got, c.want, insns)
				}
			}
		})
	}
}

func TestFromClassicErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		insns []bpf.Instruction
		msg   string
	}{
		{"empty", nil, "empty program"},
		{"no return", []bpf.Instruction{bpf.LoadConstant{Val: 1}}, "last instruction must return"},
		{"division by constant zero", []bpf.Instruction{bpf.ALUOpConstant{Op: bpf.ALUOpDiv}, bpf.RetA{}}, "division by zero"},
		{"shift by 32", []bpf.Instruction{bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 32}, bpf.RetA{}}, "more than 31"},
		{"jump out", []bpf.Instruction{bpf.Jump{Skip: 5}, bpf.RetA{}}, "past the end"},
		{"scratch index", []bpf.Instruction{bpf.LoadScratch{N: 16}, bpf.RetA{}}, "scratch index 16"},
		{"payload offset", []bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtPayloadOffset}, bpf.RetA{}}, "no eBPF equivalent"},
		{"link-layer type", []bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtLinkLayerType}, bpf.RetA{}}, "no eBPF equivalent"},
		{"load size", []bpf.Instruction{bpf.LoadAbsolute{Size: 3}, bpf.RetA{}}, "load size 3"},
		{"uninitialised scratch word", []bpf.Instruction{bpf.LoadScratch{N: 2}, bpf.RetA{}},
			"instruction 0 (ld M[2]): reads M[2], which no store may have written"},
		{"scratch word written on one path only", []bpf.Instruction{
			bpf.JumpIf{Cond: bpf.JumpEqual, SkipTrue: 1},
			bpf.StoreScratch{N: 1},
			bpf.LoadScratch{N: 1},
			bpf.RetA{},
		}, "instruction 2 (ld M[1]): reads M[1]"},
		{"unreachable load of a word written only before a return", []bpf.Instruction{
			bpf.RetConstant{Val: 1}, // the kernel goes on with what was written before it
			bpf.LoadScratch{N: 0},
			bpf.RetA{},
		}, "instruction 1 (ld M[0]): reads M[0]"},
		{"unknown opcode", []bpf.Instruction{bpf.RawInstruction{Op: 0x0e}, bpf.RetA{}},
			"instruction 0 (code 0x0e jt 0 jf 0 k 0x0): code 0x0e is not an instruction of classic BPF"},
		{"unknown ancillary", []bpf.Instruction{bpf.LoadExtension{Num: 1000}, bpf.RetA{}},
			"ancillary load SKF_AD_OFF + 1000 is unknown to the kernel"},
		{"jump past the end, by its false offset", []bpf.Instruction{bpf.JumpIf{Cond: bpf.JumpEqual, SkipTrue: 0, SkipFalse: 1}, bpf.RetA{}},
			"instruction 0"},
		{"netlink attribute", []bpf.Instruction{bpf.LoadConstant{Val: 1}, bpf.LoadExtension{Num: bpf.ExtNetlinkAttr}, bpf.RetA{}},
			"instruction 1 (ld #nla): ancillary load SKF_AD_NLATTR: no eBPF equivalent"},
		{"too long", make([]bpf.Instruction, 4097), "4097 instructions, more than the kernel's 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			insns, err := FromClassic(tt.insns)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("FromClassic = %v, %v; want an error with %q", insns, err, tt.msg)
			}
		})
	}
}

// TestFromClassicAncillary loads programs with every ancillary load
// FromClassic maps: the verifier must accept the __sk_buff accesses and
// helper calls in a socket filter.
func TestFromClassicAncillary(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, ext := range []bpf.Extension{bpf.ExtLen, bpf.ExtProto, bpf.ExtType, bpf.ExtMark, bpf.ExtQueue,
		bpf.ExtInterfaceIndex, bpf.ExtRXHash, bpf.ExtVLANTag, bpf.ExtVLANTagPresent, bpf.ExtVLANProto,
		bpf.ExtCPUID, bpf.ExtRand} {
		insns, err := FromClassic([]bpf.Instruction{bpf.LoadExtension{Num: ext}, bpf.RetA{}})
		if err != nil {
			t.Fatalf("extension %d: %v", ext, err)
		}
		p := loadForTest(t, insns, func() (*sockfilter.Program, error) { return sockfilter.Load(insns, nil) })
		if ext == bpf.ExtProto {
			// skb->protocol of an IPv4 frame, in host order as classic
			// BPF gives it.
			f := testutil.GenFrames(6, 1)[0]
			f = append(append(append([]byte{}, f[:12]...), 0x08, 0x00), make([]byte, 40)...)
			got, err := p.Test(f, packet.LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			if got != 0x0800 {
				t.Errorf("ExtProto = %#x, want 0x800", got)
			}
		}
	}
}
