package asm_test

import (
	"fmt"

	"github.com/purebpf/purebpf/asm"
)

// The smallest socket filter: it returns -1, which keeps the whole packet
// (the return value is the number of bytes to keep; 0 drops the packet).
func Example() {
	insns := asm.Instructions{
		asm.Mov.Imm(asm.R0, -1),
		asm.Exit(),
	}
	code, err := insns.Assemble()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(insns)
	fmt.Printf("% x\n", code)
	// Output:
	// 	r0 = -1
	// 	exit
	// b7 00 00 00 ff ff ff ff 95 00 00 00 00 00 00 00
}

// A socket filter that keeps IPv4 UDP packets to port 53 and drops the
// rest. On a packet socket the filter sees the frame from its link-layer
// (Ethernet) header. The legacy packet loads (LoadAbs, LoadInd) read the
// packet in network byte order through the socket buffer in r6, which the
// program gets in r1, and clobber r1 to r5.
func Example_udpPortFilter() {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),          // r6 = ctx, for LoadAbs
		asm.LoadAbs(12, asm.Half),            // EtherType
		asm.JNE.Imm(asm.R0, 0x0800, "drop"),  // not IPv4
		asm.LoadAbs(14+9, asm.Byte),          // IPv4 protocol
		asm.JNE.Imm(asm.R0, 17, "drop"),      // not UDP
		asm.LoadAbs(14+6, asm.Half),          // flags and fragment offset
		asm.JSet.Imm(asm.R0, 0x1fff, "drop"), // a later fragment has no UDP header
		asm.LoadAbs(14, asm.Byte),            // version and header length
		asm.And.Imm(asm.R0, 0x0f),
		asm.LSh.Imm(asm.R0, 2),              // header length in bytes
		asm.Mov.Reg(asm.R7, asm.R0),         // r7 survives the loads
		asm.LoadInd(asm.R7, 14+2, asm.Half), // UDP destination port
		asm.JNE.Imm(asm.R0, 53, "drop"),
		asm.Mov.Imm(asm.R0, -1), // keep the whole packet
		asm.Exit(),
		asm.Mov.Imm(asm.R0, 0).WithLabel("drop"),
		asm.Exit(),
	}
	code, err := insns.Assemble()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(insns)
	fmt.Println(len(code)/8, "instructions")
	// The kernel's text reads back, labels and all.
	again, err := asm.Parse(insns.String())
	fmt.Println(len(again), err)
	// Output:
	// 	r6 = r1
	// 	r0 = *(u16 *)skb[12]
	// 	if r0 != 0x800 goto drop
	// 	r0 = *(u8 *)skb[23]
	// 	if r0 != 0x11 goto drop
	// 	r0 = *(u16 *)skb[20]
	// 	if r0 & 0x1fff goto drop
	// 	r0 = *(u8 *)skb[14]
	// 	r0 &= 15
	// 	r0 <<= 2
	// 	r7 = r0
	// 	r0 = *(u16 *)skb[r7 + 16]
	// 	if r0 != 0x35 goto drop
	// 	r0 = -1
	// 	exit
	// drop:
	// 	r0 = 0
	// 	exit
	// 17 instructions
	// 17 <nil>
}

// Disassemble decodes bytes, and String prints each instruction as the
// kernel's verifier log does.
func ExampleDisassemble() {
	code := []byte{
		0x28, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, // r0 = *(u16 *)skb[12]
		0x55, 0x00, 0x01, 0x00, 0x00, 0x08, 0x00, 0x00, // if r0 != 0x800 goto pc+1
		0xb7, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, // r0 = -1
		0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
	}
	insns, err := asm.Disassemble(code)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ins := range insns {
		fmt.Println(ins)
	}
	// Output:
	// r0 = *(u16 *)skb[12]
	// if r0 != 0x800 goto pc+1
	// r0 = -1
	// exit
}

// Parse reads the kernel's text; errors name the line and column.
func ExampleParse() {
	_, err := asm.Parse("r0 = *(u16 *)skb[12]\nif r0 != 0x800 goto\n")
	fmt.Println(err)
	insns, _ := asm.Parse("r0 = 0x1\nexit")
	fmt.Printf("%#v\n", insns[0].IsLoadImm64())
	// Output:
	// line 2, column 20: expected a label or pc+N, found end of line
	// true
}
