package skb_test

import (
	"fmt"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// A filter that keeps IPv4 frames, reading the EtherType relative to the
// link-layer header: the kernel's log prints the load as skb[LLOff + 12].
func Example() {
	insns := append(skb.Prologue(),
		skb.LoadLink(12, asm.Half),
		asm.JNE.Imm(asm.R0, 0x0800, "drop"),
		asm.Mov.Imm(asm.R0, -1), // skb.AcceptAll
		asm.Exit(),
		asm.Mov.Imm(asm.R0, 0).WithLabel("drop"),
		asm.Exit(),
	)
	fmt.Print(insns)
	// Output:
	// r6 = r1
	// 	r0 = *(u16 *)skb[-2097140]
	// 	if r0 != 0x800 goto drop
	// 	r0 = -1
	// 	exit
	// drop:
	// 	r0 = 0
	// 	exit
}

func TestLoads(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		got  asm.Instruction
		want asm.Instruction
	}{
		{"LoadLink", skb.LoadLink(14, asm.Byte), asm.LoadAbs(-0x200000+14, asm.Byte)},
		{"LoadLinkInd", skb.LoadLinkInd(asm.R7, 16, asm.Half), asm.LoadInd(asm.R7, -0x200000+16, asm.Half)},
		{"LoadNet", skb.LoadNet(9, asm.Byte), asm.LoadAbs(-0x100000+9, asm.Byte)},
		{"LoadNetInd", skb.LoadNetInd(asm.R7, 2, asm.Word), asm.LoadInd(asm.R7, -0x100000+2, asm.Word)},
		{"Field.Load", skb.Protocol.Load(asm.R2, asm.R6), asm.LoadMem(asm.R2, asm.R6, 16, asm.Word)},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if got := skb.LoadBytesRelative(asm.R6, 4, -16, 8, skb.HeaderNet); len(got) != 7 || got[6] != asm.Call(asm.FnSkbLoadBytesRelative) || got[5] != asm.Mov.Imm(asm.R5, 1) {
		t.Errorf("LoadBytesRelative:\n%v", got)
	}
}

func TestFieldString(t *testing.T) {
	t.Parallel()
	for f, want := range map[skb.Field]string{
		skb.Len: "len", skb.PktType: "pkt_type", skb.Protocol: "protocol", skb.CB + 8: "cb[2]",
		skb.Hash: "hash", skb.Field(3): "Field(3)",
	} {
		if got := f.String(); got != want {
			t.Errorf("Field(%d).String() = %q, want %q", int16(f), got, want)
		}
	}
	if skb.HeaderMAC.String() != "mac" || skb.HeaderNet.String() != "net" || skb.HeaderStart(9).String() != "HeaderStart(9)" {
		t.Error("HeaderStart names")
	}
}
