package sockfilter_test

import (
	"errors"
	"fmt"
	"log"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// Load a filter that keeps ARP frames, and check its verdicts without
// traffic. It needs CAP_BPF, so it has no Output section; TestExampleClaims
// checks what it prints.
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
// stopped at. It needs CAP_BPF, so it has no Output section;
// TestExampleClaims checks what the comments say it prints.
func ExampleVerifierError() {
	_, err := sockfilter.Load(asm.Instructions{
		asm.Mov.Imm(asm.R2, 0).WithLabel("start"),
		asm.LoadMem(asm.R0, asm.R2, 0, asm.Byte), // r2 is no pointer
		asm.Exit(),
	}, nil)
	if ve, ok := errors.AsType[*sockfilter.VerifierError](err); ok {
		fmt.Println(err)               // load program: insn 1 (after label start): r0 = *(u8 *)(r2 +0): R2 invalid mem access 'scalar'
		fmt.Println(ve.Index, ve.Insn) // 1 r0 = *(u8 *)(r2 +0)
		fmt.Println(errors.Is(err, unix.EACCES))
		fmt.Printf("%+v", err) // the line above with the errno, then the whole verifier log
	}
}

// ExampleLoad and ExampleVerifierError have no Output section because they
// need privileges, which go test's examples cannot skip without; this test
// runs them when privileged and checks what their comments claim.
func TestExampleClaims(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, tc := range []struct {
		name  string
		run   func()
		lines []string // the first lines of the output
	}{
		{"Load", ExampleLoad, []string{"ARP: keep 0xffffffff bytes"}},
		{"VerifierError", ExampleVerifierError, []string{
			"load program: insn 1 (after label start): r0 = *(u8 *)(r2 +0): R2 invalid mem access 'scalar'",
			"1 r0 = *(u8 *)(r2 +0)",
			"true",
			"load program: insn 1 (after label start): r0 = *(u8 *)(r2 +0): R2 invalid mem access 'scalar' (bpf: permission denied)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := testutil.CaptureStdout(t, tc.run)
			got := strings.Split(out, "\n")
			if len(got) < len(tc.lines) {
				t.Fatalf("output %q, want it to start with %q", out, tc.lines)
			}
			for i, want := range tc.lines {
				if got[i] != want {
					t.Errorf("line %d: %q, want %q", i+1, got[i], want)
				}
			}
		})
	}
}
