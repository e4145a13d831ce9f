package sockfilter_test

import (
	"errors"
	"fmt"
	"log"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// Load a filter that keeps ARP frames, and check its verdicts without
// traffic. (Needs root: not run by go test.)
func ExampleLoad() {
	insns := append(skb.Prologue(),
		skb.LoadLink(12, asm.Half), // EtherType, link-relative
		asm.JNE.Imm(asm.R0, 0x0806, "drop"),
		asm.Mov.Imm(asm.R0, -1),
		asm.Exit(),
		asm.Mov.Imm(asm.R0, 0).WithLabel("drop"),
		asm.Exit(),
	)
	prog, err := sockfilter.Load(insns, &sockfilter.LoadOptions{Name: "arp"})
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()

	frame := make([]byte, 42)
	frame[12], frame[13] = 0x08, 0x06
	verdict, err := prog.Test(frame, packet.LinkEthernet)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ARP: keep %#x bytes\n", verdict)
}

// A refused program's error points at the instruction the verifier
// stopped at. (Needs root: not run by go test.)
func ExampleVerifierError() {
	_, err := sockfilter.Load(asm.Instructions{
		asm.Mov.Imm(asm.R2, 0).WithLabel("start"),
		asm.LoadMem(asm.R0, asm.R2, 0, asm.Byte), // r2 is no pointer
		asm.Exit(),
	}, nil)
	var ve *sockfilter.VerifierError
	if errors.As(err, &ve) {
		fmt.Println(err)               // load program: insn 1 (after label start): r0 = *(u8 *)(r2 +0): R2 invalid mem access 'scalar'
		fmt.Println(ve.Index, ve.Insn) // 1 r0 = *(u8 *)(r2 +0)
		fmt.Println(errors.Is(err, unix.EACCES))
		fmt.Printf("%+v", err) // the line above, then the whole verifier log
	}
}
