package sockfilter

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

	"github.com/purebpf/purebpf/internal/testutil"
)

// The differential tests compare Compile's programs, run by the kernel
// under Program.Test, with libpcap's programs for the same expressions,
// run by golang.org/x/net/bpf's VM on the whole frame. libpcap's programs
// come from the tcpdump on PATH (`tcpdump -ddd -r file.pcap EXPR`): reading
// a capture file, libpcap generates its in-band VLAN code, as for frames
// whose tags are in the frame. Nothing is cached outside the test's
// temporary directory.

// exprDiffFrames is the number of generated frames each expression is
// tested on.
const exprDiffFrames = 2500

// readExpressions returns the expressions of testdata/expressions.txt.
func readExpressions(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "expressions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		exprs = append(exprs, line)
	}
	return exprs
}

// libpcap compiles expressions with tcpdump for one link type.
type libpcap struct {
	pcap string // an empty capture file of the link type
}

// newLibpcap returns a libpcap for link, skipping t if tcpdump is missing
// (CI installs it).
func newLibpcap(t testing.TB, link LinkType) *libpcap {
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
	return &libpcap{pcap: path}
}

// compile returns libpcap's optimised program for expr.
func (l *libpcap) compile(expr string) ([]bpf.Instruction, error) {
	out, err := exec.Command("tcpdump", "-ddd", "-r", l.pcap, "--", expr).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		return nil, fmt.Errorf("tcpdump -ddd %q: %v: %s", expr, err, msg)
	}
	return parseDDD(string(out))
}

// parseDDD parses `tcpdump -ddd` output: the instruction count, then one
// instruction a line as four decimal numbers.
func parseDDD(out string) ([]bpf.Instruction, error) {
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

// loadForTest loads insns, closing the program at the end of t.
func loadForTest(t testing.TB, insns interface{ String() string }, load func() (*Program, error)) *Program {
	t.Helper()
	p, err := load()
	if err != nil {
		t.Fatalf("load:\n%s\n%v", insns, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestCompileDifferential runs every expression of the list compiled by
// Compile, and libpcap's program converted by FromClassicLinkRelative,
// under Program.Test on the generated frames, and libpcap's program in
// golang.org/x/net/bpf's VM on the same frames: all verdicts must agree.
func TestCompileDifferential(t *testing.T) {
	testutil.RequirePrivileged(t)
	lp := newLibpcap(t, LinkEthernet)
	frames := exprFrames(1, exprDiffFrames)
	for _, expr := range readExpressions(t) {
		t.Run(expr, func(t *testing.T) {
			classic, err := lp.compile(expr)
			if err != nil {
				t.Fatal(err)
			}
			vm := newTestVM(t, classic)
			insns, err := Compile(expr, LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			prog := loadForTest(t, insns, func() (*Program, error) { return Load(insns, nil) })
			conv, err := FromClassicLinkRelative(classic)
			if err != nil {
				t.Fatal(err)
			}
			convProg := loadForTest(t, conv, func() (*Program, error) { return Load(conv, nil) })
			matched, convMatched, accepted, bad := 0, 0, 0, 0
			for i, f := range frames {
				ret := vm(f)
				want := ret != 0
				got, err := prog.Test(f)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if want {
					accepted++
				}
				if (got != 0) == want {
					matched++
				} else if bad++; bad <= 3 {
					t.Errorf("frame %d (% x): Compile's program returns %#x, libpcap's %d", i, f, got, ret)
				}
				if got != 0 && got != AcceptAll {
					t.Errorf("frame %d: accepted with %#x, want AcceptAll", i, got)
				}
				conv, err := convProg.Test(f)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if (conv != 0) == want && (conv == 0 || conv == uint32(ret)) {
					convMatched++
				} else if bad++; bad <= 3 {
					t.Errorf("frame %d (% x): FromClassicLinkRelative's program returns %#x, libpcap's %d", i, f, conv, ret)
				}
			}
			t.Logf("Compile %d/%d matched, FromClassicLinkRelative %d/%d matched (libpcap accepts %d)",
				matched, len(frames), convMatched, len(frames), accepted)
			if t.Failed() {
				t.Logf("Compile's program:\n%v", insns)
			}
		})
	}
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

// newTestVM returns a function running insns in golang.org/x/net/bpf's VM.
func newTestVM(t testing.TB, insns []bpf.Instruction) func([]byte) int {
	t.Helper()
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
