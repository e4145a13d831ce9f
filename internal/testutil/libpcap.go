package testutil

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// Libpcap compiles filter expressions with libpcap, through the tcpdump
// on PATH (`tcpdump -ddd -r file.pcap EXPR`, which needs no privileges),
// for one link type. Reading a capture file, libpcap generates its in-band
// VLAN code, as for frames whose tags are in the frame.
type Libpcap struct {
	pcap string // an empty capture file of the link type
}

// NewLibpcap returns a Libpcap for the pcap link type link, skipping t if
// tcpdump is missing (CI installs it).
func NewLibpcap(t testing.TB, link uint16) *Libpcap {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump not found: install it (apt-get install tcpdump) to run the differential tests")
	}
	var hdr []byte
	hdr = binary.LittleEndian.AppendUint32(hdr, 0xa1b2c3d4)
	hdr = binary.LittleEndian.AppendUint16(hdr, 2)
	hdr = binary.LittleEndian.AppendUint16(hdr, 4)
	hdr = binary.LittleEndian.AppendUint32(hdr, 0)
	hdr = binary.LittleEndian.AppendUint32(hdr, 0)
	hdr = binary.LittleEndian.AppendUint32(hdr, 262144)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(link))
	path := filepath.Join(t.TempDir(), "empty.pcap")
	if err := os.WriteFile(path, hdr, 0o600); err != nil {
		t.Fatal(err)
	}
	return &Libpcap{pcap: path}
}

// Compile returns libpcap's optimised program for expr.
func (l *Libpcap) Compile(expr string) ([]bpf.Instruction, error) {
	out, err := exec.Command("tcpdump", "-ddd", "-r", l.pcap, "--", expr).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		return nil, fmt.Errorf("tcpdump -ddd %q: %v: %s", expr, err, msg)
	}
	return ParseDDD(string(out))
}

// ParseDDD parses `tcpdump -ddd` output: the instruction count, then one
// instruction a line as four decimal numbers.
func ParseDDD(out string) ([]bpf.Instruction, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	n, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || n != len(lines)-1 {
		return nil, fmt.Errorf("unexpected tcpdump -ddd output %q", out)
	}
	var insns []bpf.Instruction
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("unexpected tcpdump -ddd line %q", line)
		}
		var v [4]uint64
		for i := range f {
			if v[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, fmt.Errorf("unexpected tcpdump -ddd line %q", line)
			}
		}
		insns = append(insns, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}.Disassemble())
	}
	return insns, nil
}

// vmCompatible returns insns with NegateA, which golang.org/x/net/bpf's VM
// does not run, replaced by the equal multiplication by 0xffffffff.
func vmCompatible(insns []bpf.Instruction) []bpf.Instruction {
	out := append([]bpf.Instruction(nil), insns...)
	for i, ins := range out {
		if _, ok := ins.(bpf.NegateA); ok {
			out[i] = bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: 0xffffffff}
		}
	}
	return out
}

// ClassicVM returns a function running insns in golang.org/x/net/bpf's VM,
// as a reference for what libpcap's programs return; the test fails if the
// VM does. A program with a backward jump (libpcap's protochain walk) runs
// in loopVM instead, with libpcap's user-space semantics; on a frame where
// it would not end, the function returns NoVerdict.
func ClassicVM(t testing.TB, insns []bpf.Instruction) func([]byte) int {
	t.Helper()
	if hasBackwardJump(insns) {
		return loopVM(t, insns)
	}
	vm, err := bpf.NewVM(vmCompatible(insns))
	if err != nil {
		t.Fatalf("VM: %v", err)
	}
	return func(frame []byte) int {
		ret, err := vm.Run(frame)
		if err != nil {
			t.Fatalf("VM: %v", err)
		}
		return ret
	}
}
