package pcapfilter

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// checkSpliced checks that code, spliced with opts, keeps the contract
// of SpliceOptions: it writes only its working registers (and r0 to r5 in
// the helper modes, Result in result mode), touches the stack only in its
// area, defines only labels with its prefix, jumps only to them and to
// Match and NoMatch, calls only its mode's helper, has no exit and no
// legacy load, and is made of instructions the kernel takes.
func checkSpliced(t testing.TB, code asm.Instructions, o SpliceOptions) {
	t.Helper()
	n, err := o.normalize()
	if err != nil {
		t.Fatal(err)
	}
	allowed := slices.Clone(n.Working)
	helper := asm.HelperFunc(-1)
	switch o.Access {
	case SkbLoadBytes:
		helper = asm.FnSkbLoadBytes
	case ProbeReadKernel:
		helper = asm.FnProbeReadKernel
	}
	if helper >= 0 {
		allowed = append(allowed, asm.R0, asm.R1, asm.R2, asm.R3, asm.R4, asm.R5)
	}
	resultMode := o.Match == "" && o.NoMatch == ""
	if resultMode {
		allowed = append(allowed, n.Result)
	}
	lo, hi := -int(n.StackOffset+n.StackSize), -int(n.StackOffset)
	defined := map[string]bool{}
	for _, ins := range code {
		if ins.Label != "" {
			if !strings.HasPrefix(ins.Label, n.LabelPrefix) {
				t.Fatalf("label %q without the prefix %q:\n%v", ins.Label, n.LabelPrefix, code)
			}
			defined[ins.Label] = true
		}
	}
	for i, ins := range code {
		where := func() string { return fmt.Sprintf("instruction %d (%v)", i, ins) }
		if err := ins.Validate(); err != nil {
			t.Fatalf("%s: %v", where(), err)
		}
		c := ins.OpCode.Class()
		_, def := usesDefs(ins)
		for r := range regs(def) {
			if r > asm.R10 || !slices.Contains(allowed, r) {
				t.Fatalf("%s writes %v, not a working register %v:\n%v", where(), r, allowed, code)
			}
		}
		switch {
		case c == asm.LdClass:
			t.Fatalf("%s: a legacy load", where())
		case c.IsJump() && ins.OpCode.JumpOp() == asm.ExitOp:
			t.Fatalf("%s: an exit", where())
		case c.IsJump() && ins.OpCode.JumpOp() == asm.CallOp:
			if asm.HelperFunc(ins.Constant) != helper || ins.Src != 0 {
				t.Fatalf("%s: a call in %v", where(), o.Access)
			}
		case c.IsJump() && ins.Target != "":
			if !defined[ins.Target] && ins.Target != o.Match && ins.Target != o.NoMatch {
				t.Fatalf("%s: jumps to %q, neither its own nor Match or NoMatch", where(), ins.Target)
			}
		}
		if off, ok := stackOffset(ins); ok {
			if int(off) < lo || int(off)+int(ins.OpCode.Size()) > hi {
				t.Fatalf("%s: stack access outside [%d, %d)", where(), lo, hi)
			}
		}
		// A pointer to a helper's buffer: rN = r10; rN += off.
		if ins.OpCode == asm.Mov.Reg(0, 0).OpCode && ins.Src == asm.R10 {
			next := code[i+1]
			if next.OpCode != asm.Add.Imm(0, 0).OpCode || next.Dst != ins.Dst || int(next.Constant) < lo || int(next.Constant)+8 > hi {
				t.Fatalf("%s: a stack pointer outside [%d, %d)", where(), lo, hi)
			}
		}
	}
	if resultMode && len(code) > 0 && !falls(code[len(code)-1]) {
		t.Fatalf("in result mode the code must fall through at its end:\n%v", code)
	}
}

func TestSpliceOptionsErrors(t *testing.T) {
	d := SpliceOptions{Access: DirectAccess, PacketStart: asm.R2, PacketEnd: asm.R3}
	with := func(f func(o *SpliceOptions)) *SpliceOptions { o := d; f(&o); return &o }
	for _, tt := range []struct {
		name string
		opts *SpliceOptions
		want string
	}{
		{"nil", nil, "no SpliceOptions"},
		{"no access", &SpliceOptions{}, "Access"},
		{"same input", with(func(o *SpliceOptions) { o.PacketEnd = asm.R2 }), "each needs its own"},
		{"input r10", with(func(o *SpliceOptions) { o.PacketEnd = asm.R10 }), "not one of r0 to r9"},
		{"working input", with(func(o *SpliceOptions) { o.Working = []asm.Register{asm.R0, asm.R2} }), "must not write"},
		{"working twice", with(func(o *SpliceOptions) { o.Working = []asm.Register{asm.R0, asm.R0} }), "twice"},
		{"working r10", with(func(o *SpliceOptions) { o.Working = []asm.Register{asm.R10} }), "not one of r0 to r9"},
		{"result r10", with(func(o *SpliceOptions) { o.Result = asm.R10 }), "result register"},
		{"stack unaligned", with(func(o *SpliceOptions) { o.StackOffset = 4 }), "multiple of 8"},
		{"stack past", with(func(o *SpliceOptions) { o.StackOffset, o.StackSize = 256, 512 }), "goes past"},
		{"label with the prefix", with(func(o *SpliceOptions) { o.Match = "pcapfilter.drop" }), "LabelPrefix"},
		{"no layout", &SpliceOptions{Access: ProbeReadKernel, Context: asm.R6}, "KernelSkbLayout"},
		{"bad layout", &SpliceOptions{Access: ProbeReadKernel, Context: asm.R6, Layout: SkbLayout{Head: 8, Tail: 12, DataLen: 16, MACHeader: 8, NetworkHeader: 20}}, "overlaps"},
		{"too few registers", with(func(o *SpliceOptions) { o.Working = []asm.Register{asm.R0} }), "too few working registers"},
		{"helper calls need callee-saved", &SpliceOptions{Access: SkbLoadBytes, Context: asm.R6, Working: []asm.Register{}}, "r6 to r9"},
		{"stack too small", &SpliceOptions{Access: SkbLoadBytes, Context: asm.R6, StackSize: 8}, "bytes of stack"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileSplice("tcp port 80 and len > 100 and ip[2:2] + tcp[0] > ip[3] * 2", packet.LinkEthernet, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "splice: ") {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestSpliceRegisters splices every expression with few registers to
// spare, as tools give a filter (cilium/pwru: packet pointers in r4 and
// r5, working r0 to r3): each either keeps the contract or says that it
// needs more registers.
func TestSpliceRegisters(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts SpliceOptions
	}{
		{"pwru", SpliceOptions{Access: DirectAccess, PacketStart: asm.R4, PacketEnd: asm.R5, Working: []asm.Register{asm.R0, asm.R1, asm.R2, asm.R3}, Match: "m", NoMatch: "n"}},
		{"three", SpliceOptions{Access: DirectAccess, PacketStart: asm.R8, PacketEnd: asm.R9, Working: []asm.Register{asm.R3, asm.R1, asm.R7}, Result: asm.R6}},
		{"helper", SpliceOptions{Access: SkbLoadBytes, Context: asm.R9, Working: []asm.Register{asm.R7, asm.R8}, Match: "m"}},
		{"probe", SpliceOptions{Access: ProbeReadKernel, Context: asm.R2, Layout: exampleLayout, Working: []asm.Register{asm.R6, asm.R7, asm.R8}, NoMatch: "n", StackOffset: 64, StackSize: 128}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fit := 0
			for _, expr := range testutil.Expressions(t) {
				code, err := CompileSplice(expr, packet.LinkEthernet, &tt.opts)
				if err != nil {
					if !strings.Contains(err.Error(), "too few working registers") {
						t.Errorf("%q: %v", expr, err)
					}
					continue
				}
				fit++
				checkSpliced(t, code, tt.opts)
			}
			t.Logf("%d expressions fit", fit)
			if fit == 0 {
				t.Error("no expression fits")
			}
		})
	}
}

// TestCompileSpliceLinkLayer checks which expressions a network-layer
// start refuses: those that need the link-layer header and those that
// can match only frames without a network-layer packet.
func TestCompileSpliceLinkLayer(t *testing.T) {
	opts := SpliceOptions{Access: DirectAccess, PacketStart: asm.R2, PacketEnd: asm.R3}
	for _, tt := range []struct {
		expr    string
		refused bool
	}{
		{"arp", true}, {"rarp", true}, {"ether host 1:2:3:4:5:6", true}, {"vlan", true},
		{"ether proto 0x88cc", true}, {"vlan 10 and tcp", true},
		{"arp or ip", false}, {"ip and ip6", false}, {"ip", false}, {"len > 60", false}, {"", false},
		{"not arp", false}, {"link[0] = 0x45", false},
	} {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := CompileSplice(tt.expr, packet.LinkRawIP, &opts)
			if got := errors.Is(err, ErrLinkLayer); got != tt.refused || !tt.refused && err != nil {
				t.Errorf("CompileSplice(%q, LinkRawIP): %v; want refused %v", tt.expr, err, tt.refused)
			}
			if _, err := CompileSplice(tt.expr, packet.LinkEthernet, &opts); err != nil {
				t.Errorf("CompileSplice(%q, LinkEthernet): %v", tt.expr, err)
			}
		})
	}
	// The error of Compile is kept: errors.As finds it.
	_, err := CompileSplice("vlan", packet.LinkRawIP, &opts)
	var ce *Error
	if !errors.As(err, &ce) || ce.Column != 1 {
		t.Errorf("CompileSplice(vlan): %v does not wrap Compile's *Error", err)
	}
}

// TestSpliceForeign checks that Splice refuses programs that are not
// Compile's, saying why, rather than splicing what it cannot.
func TestSpliceForeign(t *testing.T) {
	opts := &SpliceOptions{Access: DirectAccess, PacketStart: asm.R2, PacketEnd: asm.R3}
	ret := asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Exit()}
	prog := func(insns ...asm.Instruction) asm.Instructions {
		return append(append(asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}, insns...), ret...)
	}
	for _, tt := range []struct {
		name  string
		link  packet.LinkType
		insns asm.Instructions
		want  string
	}{
		{"helper", packet.LinkEthernet, prog(asm.Call(asm.FnGetPrandomU32)), "calls bpf_get_prandom_u32"},
		{"writes r6", packet.LinkEthernet, prog(asm.Mov.Imm(asm.R6, 1)), "r6"},
		{"data-relative", packet.LinkEthernet, prog(asm.LoadAbs(12, asm.Half)), "skb->data"},
		{"net for ethernet", packet.LinkEthernet, prog(skb.LoadNet(9, asm.Byte)), "network header"},
		{"link for raw", packet.LinkRawIP, prog(skb.LoadLink(12, asm.Half)), "link-layer header"},
		{"context stored", packet.LinkEthernet, prog(asm.StoreMem(asm.RFP, -8, asm.R6, asm.DWord)), "context"},
		{"frame pointer", packet.LinkEthernet, prog(asm.Mov.Reg(asm.R2, asm.RFP)), "r10"},
		{"field without skb", packet.LinkEthernet, prog(skb.PktType.Load(asm.R0, asm.R6)), "pkt_type"},
		{"no exit", packet.LinkEthernet, asm.Instructions{asm.Mov.Imm(asm.R0, 0)}, "does not end"},
		{"loop", packet.LinkEthernet, asm.Instructions{asm.Mov.Imm(asm.R0, 0).WithLabel("a"), asm.JEq.Imm(asm.R0, 0, "a"), asm.Exit()}, "back"},
		{"wild jump", packet.LinkEthernet, asm.Instructions{asm.JEq.Imm(asm.R0, 0, "").WithOffset(9), asm.Exit()}, "outside"},
		{"atomic", packet.LinkEthernet, prog(asm.AtomicAdd.Mem(asm.RFP, -8, asm.R0, asm.DWord)), "atomic"},
		{"link type", packet.LinkType(113), ret, "link type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Splice(tt.insns, tt.link, opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Splice:\n%v\ngot %v, want an error with %q", tt.insns, err, tt.want)
			}
		})
	}
}

// TestSpliceContract splices every expression in every target of the
// differential test and checks the contract; the differential test runs
// them.
func TestSpliceContract(t *testing.T) {
	for _, tg := range spliceTargets(exampleLayout, 1) {
		t.Run(tg.name, func(t *testing.T) {
			for _, expr := range testutil.Expressions(t) {
				code, err := CompileSplice(expr, tg.link, &tg.opts)
				if errors.Is(err, ErrLinkLayer) && tg.link == packet.LinkRawIP {
					continue
				}
				if err != nil {
					t.Fatalf("%q: %v", expr, err)
				}
				checkSpliced(t, code, tg.opts)
				if _, err := tg.wrap(code).Assemble(); err != nil {
					t.Fatalf("%q: the whole program does not assemble: %v", expr, err)
				}
			}
		})
	}
}

// TestSkbLayoutFromBTF checks the errors of SkbLayoutFromBTF and of a bad
// SkbLayout, and reads the running kernel's layout where it has BTF. (The
// offsets are right if the ProbeReadKernel programs of the differential
// and live tests read the frames: they compare every verdict with
// libpcap's.)
func TestSkbLayoutFromBTF(t *testing.T) {
	if _, err := SkbLayoutFromBTF([]byte("not BTF")); err == nil {
		t.Error("SkbLayoutFromBTF of garbage: no error")
	}
	if err := (SkbLayout{}).check(); err == nil || !strings.Contains(err.Error(), "KernelSkbLayout") {
		t.Errorf("the zero SkbLayout: %v", err)
	}
	if err := exampleLayout.check(); err != nil {
		t.Error(err)
	}
	l, err := KernelSkbLayout()
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	t.Logf("%+v", l)
}

// TestCompileSpliceOptions checks that CompileSplice compiles with
// SpliceOptions.Compile: NoResolve refuses a host name that Compile's
// defaults resolve, and a netmask lets `ip broadcast` compile, as
// CompileWith does.
func TestCompileSpliceOptions(t *testing.T) {
	opts := SpliceOptions{Access: DirectAccess, PacketStart: asm.R2, PacketEnd: asm.R3}
	if _, err := CompileSplice("host localhost", packet.LinkEthernet, &opts); err != nil {
		t.Fatalf("CompileSplice(host localhost): %v", err)
	}
	opts.Compile = &CompileOptions{NoResolve: true}
	_, err := CompileSplice("host localhost", packet.LinkEthernet, &opts)
	_, werr := CompileWith("host localhost", packet.LinkEthernet, opts.Compile)
	if err == nil || werr == nil || err.Error() != werr.Error() {
		t.Errorf("CompileSplice(host localhost) with NoResolve: %v; want CompileWith's error %v", err, werr)
	}
	opts.Compile = nil
	if _, err := CompileSplice("ip broadcast", packet.LinkEthernet, &opts); err == nil {
		t.Error("CompileSplice(ip broadcast) with no netmask compiles; libpcap's live compile refuses it")
	}
	opts.Compile = &CompileOptions{Netmask: netip.MustParseAddr("255.255.255.0")}
	got, err := CompileSplice("ip broadcast", packet.LinkEthernet, &opts)
	if err != nil {
		t.Fatalf("CompileSplice(ip broadcast) with a netmask: %v", err)
	}
	insns, err := CompileWith("ip broadcast", packet.LinkEthernet, opts.Compile)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Splice(insns, packet.LinkEthernet, &opts)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("CompileSplice(ip broadcast):\n%v\nwant Splice of CompileWith's program:\n%v", got, want)
	}
}
