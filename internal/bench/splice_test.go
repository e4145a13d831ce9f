//go:build linux

package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	casm "github.com/cilium/ebpf/asm"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

// The splice with github.com/cilium/ebpf, the library the tools that
// embed pcap filters in their programs use (cilium/pwru, ptcpdump,
// inspektor-gadget): pcapfilter.CompileSplice gives the filter as
// purebpf's asm.Instructions, which become cilium's in one of two ways.
//
//   - In result mode (no Match or NoMatch label), the filter is
//     self-contained: its jumps all land inside it, and it falls through
//     with its verdict in a register. Assemble it to bytes and decode them
//     with casm.AppendInstructions: the cleanest path, shown by
//     TestSpliceCiliumResult.
//   - In label mode, the filter jumps to the caller's labels, which only
//     the whole program resolves: convert it instruction by instruction,
//     keeping each label as a cilium symbol and each jump target as a
//     cilium reference (ciliumInstructions), and cilium's assembler
//     resolves them with the rest of the program. TestSpliceCiliumLabels.
//
// Both build a tc (SCHED_CLS) program around the filter with cilium's asm,
// load it with ebpf.NewProgram and run it with Program.Run on generated
// frames, and compare its verdicts with libpcap's. Run them as root with
//
//	cd internal/bench && go test -run SpliceCilium -v

// The offsets of skb->data and skb->data_end in struct __sk_buff, and tc's
// verdicts.
const (
	skbData, skbDataEnd = 76, 80
	tcActOK, tcActShot  = 0, 2
)

// TestSpliceCiliumResult splices `tcp dst port 80` with direct packet
// access into a tc program, through bytes: the filter leaves 1 or 0 in
// r0, and the program drops what matches.
func TestSpliceCiliumResult(t *testing.T) {
	const expr = "tcp dst port 80 or udp port 53"
	filter, err := pcapfilter.CompileSplice(expr, packet.LinkEthernet, &pcapfilter.SpliceOptions{
		Access:      pcapfilter.DirectAccess,
		PacketStart: asm.R2, PacketEnd: asm.R3, // skb->data, skb->data_end
		Context: asm.R6, SkbContext: true, // for `len`: skb->len
		Result: asm.R0,
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := filter.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	body, err := casm.AppendInstructions(nil, bytes.NewReader(raw), binary.LittleEndian, "linux")
	if err != nil {
		t.Fatal(err)
	}
	insns := casm.Instructions{
		casm.Mov.Reg(casm.R6, casm.R1),
		casm.LoadMem(casm.R2, casm.R6, skbData, casm.Word),
		casm.LoadMem(casm.R3, casm.R6, skbDataEnd, casm.Word),
	}
	insns = append(insns, body...)
	insns = append(insns,
		casm.JNE.Imm(casm.R0, 0, "drop"),
		casm.Mov.Imm(casm.R0, tcActOK),
		casm.Return(),
		casm.Mov.Imm(casm.R0, tcActShot).WithSymbol("drop"),
		casm.Return(),
	)
	runCilium(t, expr, insns, tcActShot, tcActOK)
}

// TestSpliceCiliumLabels splices a filter with bpf_skb_load_bytes into a
// tc program in label mode: the filter jumps to the program's "drop" and
// "pass", which cilium's assembler resolves.
func TestSpliceCiliumLabels(t *testing.T) {
	const expr = "ip and tcp[tcpflags] & tcp-syn != 0 and greater 60"
	filter, err := pcapfilter.CompileSplice(expr, packet.LinkEthernet, &pcapfilter.SpliceOptions{
		Access:  pcapfilter.SkbLoadBytes,
		Context: asm.R6,
		Match:   "drop", NoMatch: "pass",
		LabelPrefix: "syn.",
	})
	if err != nil {
		t.Fatal(err)
	}
	body, err := ciliumInstructions(filter)
	if err != nil {
		t.Fatal(err)
	}
	insns := append(casm.Instructions{casm.Mov.Reg(casm.R6, casm.R1)}, body...)
	insns = append(insns,
		casm.Mov.Imm(casm.R0, tcActOK).WithSymbol("pass"),
		casm.Return(),
		casm.Mov.Imm(casm.R0, tcActShot).WithSymbol("drop"),
		casm.Return(),
	)
	runCilium(t, expr, insns, tcActShot, tcActOK)
}

// ciliumInstructions converts purebpf's instructions to cilium's one by
// one, labels and jump targets kept as symbols and references for
// cilium's linker to resolve (the filter has no 64-bit gotos or calls of
// subprograms, whose references take other fields).
func ciliumInstructions(insns asm.Instructions) (casm.Instructions, error) {
	var out casm.Instructions
	for i, ins := range insns {
		label, target := ins.Label, ins.Target
		ins.Label, ins.Target = "", ""
		raw, err := asm.Instructions{ins}.Assemble()
		if err != nil {
			return nil, fmt.Errorf("instruction %d: %w", i, err)
		}
		var c casm.Instruction
		if err := c.Unmarshal(bytes.NewReader(raw), binary.LittleEndian, "linux"); err != nil {
			return nil, fmt.Errorf("instruction %d: %w", i, err)
		}
		if target != "" {
			// cilium's linker resolves a jump whose offset is -1.
			c.Offset = -1
			c = c.WithReference(target)
		}
		if label != "" {
			c = c.WithSymbol(label)
		}
		out = append(out, c)
	}
	return out, nil
}

// runCilium loads insns as a tc program with cilium/ebpf and runs it on
// generated frames: it must return match for the frames libpcap's program
// for expr accepts, noMatch for the others.
func runCilium(t *testing.T, expr string, insns casm.Instructions, match, noMatch uint32) {
	t.Helper()
	testutil.RequirePrivileged(t)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, Instructions: insns, License: "GPL"})
	if err != nil {
		t.Fatalf("load with cilium/ebpf: %v", err)
	}
	defer prog.Close()
	classic, err := testutil.NewLibpcap(t, testutil.LinkEthernet).Compile(expr)
	if err != nil {
		t.Fatal(err)
	}
	vm := testutil.ClassicVM(t, classic)
	matched := 0
	for i, f := range testutil.GenFrames(1, 2000) {
		ret, err := prog.Run(&ebpf.RunOptions{Data: f})
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		want := noMatch
		if vm(f) != 0 {
			want = match
			matched++
		}
		if ret != want {
			t.Errorf("frame %d (% x): the program returns %d, want %d", i, f, ret, want)
		}
	}
	t.Logf("%d instructions; %d of 2000 frames match %q", len(insns), matched, expr)
	if matched == 0 {
		t.Errorf("no frame matches %q: the test shows nothing", expr)
	}
}
