package kparse

import (
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

func TestHoistable(t *testing.T) {
	t.Parallel()
	ret := asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Exit()}
	tests := []struct {
		name string
		body asm.Instructions
		want bool
	}{
		{"no stack", nil, true},
		{"stack high", asm.Instructions{asm.StoreMem(asm.R10, -8, asm.R1, asm.DWord), asm.LoadMem(asm.R2, asm.R10, -8, asm.DWord), asm.StoreImm(asm.R10, -400, 0, asm.Word)}, true},
		{"stack low", asm.Instructions{asm.StoreImm(asm.R10, -416, 0, asm.DWord)}, false},
		{"load low", asm.Instructions{asm.LoadMem(asm.R2, asm.R10, -500, asm.Byte)}, false},
		{"address taken", asm.Instructions{asm.Mov.Reg(asm.R2, asm.R10)}, false},
		{"r10 spilled", asm.Instructions{asm.StoreMem(asm.R10, -8, asm.R10, asm.DWord)}, false},
		{"r10 compared", asm.Instructions{asm.JEq.Reg(asm.R1, asm.R10, "").WithOffset(0)}, false},
		{"atomic high", asm.Instructions{asm.AtomicAdd.Mem(asm.R10, -16, asm.R1, asm.DWord)}, true},
		{"map load", asm.Instructions{asm.LoadMapPtr(asm.R1, "m")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			filter := append(append(skb.Prologue(), tt.body...), ret...)
			sp, err := splice(filter, testAccept, testDrop)
			if err != nil {
				t.Fatal(err)
			}
			if got := hoistable(sp); got != tt.want {
				t.Errorf("hoistable = %v; want %v", got, tt.want)
			}
		})
	}
	sub := asm.Instructions{asm.CallLabel("s"), asm.Exit(), asm.Mov.Imm(asm.R0, 1).WithLabel("s"), asm.Exit()}
	sp, err := splice(sub, testAccept, testDrop)
	if err != nil {
		t.Fatal(err)
	}
	if hoistable(sp) {
		t.Error("a filter with a subprogram is hoistable")
	}
}

// TestHoistedLoads checks which of a filter's loads read the copy: the
// constant loads relative to the header the copy starts at, within it.
func TestHoistedLoads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		link  packet.LinkType
		load  asm.Instruction
		copy  bool
		label string
	}{
		{packet.LinkEthernet, skb.LoadLink(12, asm.Half), true, "the EtherType"},
		{packet.LinkEthernet, skb.LoadLink(76, asm.Word), true, "the last word of the copy"},
		{packet.LinkEthernet, skb.LoadLink(77, asm.Word), false, "past the copy"},
		{packet.LinkEthernet, skb.LoadNet(9, asm.Byte), false, "relative to the network header"},
		{packet.LinkEthernet, asm.LoadAbs(12, asm.Half), false, "relative to skb->data"},
		{packet.LinkEthernet, asm.LoadAbs(0x7fff0000, asm.Byte), false, "far out"},
		{packet.LinkEthernet, skb.LoadLinkInd(asm.R7, 14, asm.Half), false, "indexed"},
		{packet.LinkRawIP, skb.LoadNet(9, asm.Byte), true, "raw IP, relative to the network header"},
		{packet.LinkRawIP, skb.LoadNet(71, asm.Byte), true, "raw IP, the last byte of the copy"},
		{packet.LinkRawIP, skb.LoadNet(72, asm.Byte), false, "raw IP, past the copy"},
		{packet.LinkRawIP, skb.LoadLink(9, asm.Byte), false, "raw IP, relative to the link-layer header"},
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			filter := append(skb.Prologue(), asm.Mov.Imm(asm.R7, 0), tt.load, asm.Mov.Imm(asm.R0, -1), asm.Exit())
			prog, err := Records(filter, &RecordOptions{Options: Options{Link: tt.link, Clock: asm.FnKtimeGetNs}})
			if err != nil {
				t.Fatal(err)
			}
			i := find(prog, tt.load)
			if i < 0 {
				t.Fatalf("the load is gone from\n%v", prog)
			}
			hoisted := prog[i].Label != "" && prog[i-1].Target != "" // legacy: after the copy's goto
			if hoisted != tt.copy {
				t.Errorf("load served by the copy: %v; want %v\n%v", hoisted, tt.copy, prog[:i+2])
			}
		})
	}
}

// TestLoadCopyBE checks the aligned loads of a number from the copy.
func TestLoadCopyBE(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		off   int16
		n     int32
		loads int
	}{
		{-496, 4, 1}, {-498, 4, 2}, {-497, 4, 4}, {-498, 2, 1}, {-497, 2, 2}, {-497, 1, 1},
	} {
		ins := loadCopyBE(tt.off, tt.n)
		loads := 0
		for _, in := range ins {
			if in.OpCode.Class() == asm.LdXClass {
				loads++
				if int(in.Offset)%int(in.OpCode.Size()) != 0 {
					t.Errorf("%d bytes at %d: misaligned %v", tt.n, tt.off, in)
				}
			}
		}
		if loads != tt.loads {
			t.Errorf("%d bytes at %d: %d loads, want %d:\n%v", tt.n, tt.off, loads, tt.loads, ins)
		}
	}
}
