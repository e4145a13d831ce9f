package asm

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/internal/sys"
	"github.com/purebpf/purebpf/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/kernel_text.golden from the running kernel (as root)")

const goldenFile = "testdata/kernel_text.golden"

// kernelProgram is a program loaded to read the kernel's text of its
// instructions.
type kernelProgram struct {
	name    string
	insns   Instructions
	fdArray []int32
	// kfunc is the kernel's name of the kfunc the program calls, if any.
	kfunc string
}

// formsProgram holds every form of the table with kernel text, in a
// straight line: the jumps go to pc+0 and exit comes last.
func formsProgram() kernelProgram {
	p := kernelProgram{name: "forms"}
	for _, f := range forms {
		p.insns = append(p.insns, f.ins)
	}
	return p
}

// pseudoProgram holds the forms whose kernel text depends on the running
// kernel: LD_IMM64 of maps (the verifier prints the address it put in
// their place), a kfunc call (it prints the name from BTF), LoadFunc and a
// BPF-to-BPF call (they need subprograms). LD_IMM64 of a kernel variable
// (PseudoBTFID) is left out: the verifier fails before its listing when the
// kernel has no data symbols in kallsyms (CONFIG_KALLSYMS_ALL=n), as on the
// machine that made the golden file.
func pseudoProgram(t *testing.T) kernelProgram {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1})
	if err != nil {
		t.Fatalf("create array map: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatalf("load kernel BTF: %v", err)
	}
	const kfunc = "bpf_rcu_read_lock" // in the common set, callable from every program type
	var fn *btf.Func
	if err := spec.TypeByName(kfunc, &fn); err != nil {
		t.Fatalf("find kfunc %s: %v", kfunc, err)
	}
	id, err := spec.TypeID(fn)
	if err != nil {
		t.Fatal(err)
	}
	fd := int32(m.FD())
	return kernelProgram{
		name: "pseudo",
		insns: Instructions{
			LoadMapFD(R1, fd),
			LoadMapValue(R1, fd, 8),
			LoadMapIdx(R1, 0),
			LoadMapIdxValue(R1, 1, 4),
			CallKfunc(int32(id)),
			LoadFunc(R2, "sub"),
			LoadFunc(R2, "sub2"),
			CallLabel("sub"),
			CallLabel("sub2"),
			Mov.Imm(R0, 0),
			Exit(),
			Mov.Imm(R0, 0).WithLabel("sub"),
			Exit(),
			Mov.Imm(R0, 1).WithLabel("sub2"),
			Exit(),
		},
		fdArray: []int32{fd, fd},
		kfunc:   kfunc,
	}
}

// TestKernelBTFID checks LoadBTFID against the kernel, which the listing
// cannot do here (see pseudoProgram): the verifier names the variable
// whose BTF id it read from the instruction, whether or not it then finds
// its address.
func TestKernelBTFID(t *testing.T) {
	testutil.RequirePrivileged(t)
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatalf("load kernel BTF: %v", err)
	}
	const name = "runqueues" // a per-CPU variable, in vmlinux BTF
	var v *btf.Var
	if err := spec.TypeByName(name, &v); err != nil {
		t.Fatalf("find %s: %v", name, err)
	}
	id, err := spec.TypeID(v)
	if err != nil {
		t.Fatal(err)
	}
	log := loadLog(t, Instructions{LoadBTFID(R1, int32(id)), Mov.Imm(R0, 0), Exit()}, nil)
	// With CONFIG_KALLSYMS_ALL=n the verifier fails to find the address
	// of the symbol; with it, r1 becomes a per-CPU pointer to struct rq.
	notFound := "failed to find the address for kernel symbol '" + name + "'"
	resolved := regexp.MustCompile(`R1(_w)?=percpu_ptr_rq`)
	if !strings.Contains(log, notFound) && !resolved.MatchString(log) {
		t.Errorf("verifier log shows neither %q nor %v:\n%s", notFound, resolved, log)
	}
}

// listingLine is a line of the verifier's "Live regs before insn:" listing.
type listingLine struct {
	slot   int
	opcode uint8
	text   string
}

func (l listingLine) String() string { return fmt.Sprintf("%d: (%02x) %s", l.slot, l.opcode, l.text) }

// A line such as "     12: .12...6789 (15) if r1 == 0x800 goto pc+0"; the
// first column, when present, is a strongly connected component.
var listingRE = regexp.MustCompile(`^\s*(?:\d+\s+)?(\d+): [0-9.]{10} \(([0-9a-f]{2})\) (.*)$`)

// kernelListing loads p as a socket filter with log level 2 and returns
// the verifier's listing of its instructions, which Linux 6.15 and later
// print before verifying, whether or not verification then succeeds.
func kernelListing(t *testing.T, p kernelProgram) []listingLine {
	t.Helper()
	log := loadLog(t, p.insns, p.fdArray)
	_, after, ok := strings.Cut(log, "Live regs before insn:\n")
	if !ok {
		t.Fatalf("load %s: no instruction listing in the verifier log (needs Linux 6.15 or later):\n%s", p.name, log)
	}
	var lines []listingLine
	for line := range strings.Lines(after) {
		m := listingRE.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
		if m == nil {
			break
		}
		slot, _ := strconv.Atoi(m[1])
		op, _ := strconv.ParseUint(m[2], 16, 8)
		lines = append(lines, listingLine{slot, uint8(op), m[3]})
	}
	return lines
}

// loadLog loads insns as a socket filter with log level 2 and returns the
// verifier log, whether or not the load succeeds.
func loadLog(t *testing.T, insns Instructions, fdArray []int32) string {
	t.Helper()
	code, err := insns.Assemble()
	if err != nil {
		t.Fatalf("assemble: %v", err)
	}
	logBuf := make([]byte, 1<<22)
	attr := sys.ProgLoadAttr{
		ProgType: sys.BPF_PROG_TYPE_SOCKET_FILTER,
		InsnCnt:  uint32(len(code) / 8),
		Insns:    sys.SlicePointer(code),
		License:  sys.StringPointer("GPL"),
		LogLevel: sys.BPF_LOG_LEVEL2,
		LogSize:  uint32(len(logBuf)),
		LogBuf:   sys.SlicePointer(logBuf),
		FDArray:  sys.SlicePointer(fdArray),
	}
	attr.FDArrayCnt = uint32(len(fdArray))
	fd, err := sys.ProgLoad(&attr)
	if err == nil {
		t.Cleanup(func() { unix.Close(fd) })
	} else if errors.Is(err, unix.ENOSPC) {
		t.Fatalf("load: verifier log does not fit %d bytes: %v", len(logBuf), err)
	}
	return string(logBuf[:max(0, bytes.IndexByte(logBuf, 0))])
}

var (
	addrRE  = regexp.MustCompile(`^(r\d+) = 0x[0-9a-f]+$`)
	kfuncRE = regexp.MustCompile(`^(call \w+)#\d+$`)
)

// checkListing compares the kernel's listing of p with Instruction.String
// and returns the listing as the golden file keeps it.
func checkListing(t *testing.T, p kernelProgram, lines []listingLine) []listingLine {
	t.Helper()
	resolved, err := p.insns.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	offs := p.insns.Offsets()
	if len(lines) != len(resolved) {
		t.Errorf("%s: kernel listed %d instructions, want %d", p.name, len(lines), len(resolved))
	}
	var out []listingLine
	for i, l := range lines {
		if i >= len(resolved) {
			break
		}
		ins := resolved[i]
		ins.Target = ""
		want := ins.String()
		kept := l
		if l.slot != offs[i] || l.opcode != uint8(ins.OpCode) {
			t.Errorf("%s: instruction %d: kernel lists slot %d opcode %02x, want slot %d opcode %02x", p.name, i, l.slot, l.opcode, offs[i], uint8(ins.OpCode))
		}
		switch {
		case ins.IsLoadImm64() && ins.Src == PseudoFunc:
			// The kernel prints the offset of the subprogram as the
			// 64-bit immediate.
			want = fmt.Sprintf("%s = %#x", ins.Dst, uint64(ins.Constant))
		case ins.IsLoadImm64() && ins.Src != 0:
			// The kernel prints the address it put in place of the fd.
			if !addrRE.MatchString(l.text) || !strings.HasPrefix(l.text, ins.Dst.String()+" = ") {
				t.Errorf("%s: instruction %d: kernel prints %q, want %s = 0x<address>", p.name, i, l.text, ins.Dst)
			}
			want = l.text
			kept.text = addrRE.ReplaceAllString(l.text, "$1 = 0xADDR")
		case ins.OpCode == OpCode(JumpClass)|OpCode(CallOp) && ins.Src == PseudoKfuncCall:
			// The kernel names the kfunc from BTF where String cannot.
			want = fmt.Sprintf("call %s#%d", p.kfunc, ins.Constant)
			kept.text = kfuncRE.ReplaceAllString(l.text, "$1#ID")
		}
		if l.text != want {
			t.Errorf("%s: instruction %d: kernel prints %q, String() = %q", p.name, i, l.text, want)
		}
		out = append(out, kept)
	}
	return out
}

// TestKernelText loads programs holding every instruction form into the
// running kernel with log level 2 and compares the verifier's listing of
// each instruction with Instruction.String, byte for byte, and its opcode.
// It then compares the listing with the golden file, or with -update
// rewrites it.
func TestKernelText(t *testing.T) {
	testutil.RequirePrivileged(t)
	var golden bytes.Buffer
	fmt.Fprintf(&golden, "# The verifier's listing (\"Live regs before insn:\", log level 2) of the\n")
	fmt.Fprintf(&golden, "# programs of kernel_test.go, loaded as socket filters into Linux %s:\n", kernelRelease())
	fmt.Fprintf(&golden, "# slot: (opcode) text, as the kernel printed them; in program pseudo, map\n")
	fmt.Fprintf(&golden, "# addresses are replaced by 0xADDR and the kfunc's BTF id by ID.\n")
	fmt.Fprintf(&golden, "# Regenerate as root: go test ./asm -run TestKernelText -update\n")
	for _, p := range []kernelProgram{formsProgram(), kernelProgram{name: "labels", insns: labelsProgram()}, pseudoProgram(t)} {
		lines := checkListing(t, p, kernelListing(t, p))
		fmt.Fprintf(&golden, "program %s\n", p.name)
		for _, l := range lines {
			fmt.Fprintln(&golden, l)
		}
	}
	if *update {
		if err := os.WriteFile(goldenFile, golden.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := readGolden()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := parseGolden(golden.String())
	for name, lines := range got {
		if fmt.Sprint(lines) != fmt.Sprint(want[name]) {
			t.Errorf("program %s: the kernel's listing differs from %s; if the kernel changed, rerun with -update and review the diff", name, goldenFile)
		}
	}
}

// TestKernelTextGolden checks Instruction.String against the kernel's text
// kept in the golden file, without needing privileges.
func TestKernelTextGolden(t *testing.T) {
	golden, err := readGolden()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []kernelProgram{formsProgram(), kernelProgram{name: "labels", insns: labelsProgram()}} {
		lines, ok := golden[p.name]
		if !ok {
			t.Fatalf("%s has no program %s", goldenFile, p.name)
		}
		checkListing(t, p, lines)
	}
	if n := len(golden["pseudo"]); n != 15 {
		t.Errorf("%s: program pseudo has %d lines, want 15", goldenFile, n)
	}
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "(unknown)"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func readGolden() (map[string][]listingLine, error) {
	b, err := os.ReadFile(filepath.FromSlash(goldenFile))
	if err != nil {
		return nil, fmt.Errorf("read golden file (regenerate as root with -update): %w", err)
	}
	return parseGolden(string(b))
}

var goldenLineRE = regexp.MustCompile(`^(\d+): \(([0-9a-f]{2})\) (.*)$`)

func parseGolden(s string) (map[string][]listingLine, error) {
	progs := make(map[string][]listingLine)
	name := ""
	sc := bufio.NewScanner(strings.NewReader(s))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if p, ok := strings.CutPrefix(line, "program "); ok {
			name = p
			continue
		}
		m := goldenLineRE.FindStringSubmatch(line)
		if m == nil || name == "" {
			return nil, fmt.Errorf("%s:%d: bad line %q", goldenFile, n, line)
		}
		slot, _ := strconv.Atoi(m[1])
		op, _ := strconv.ParseUint(m[2], 16, 8)
		progs[name] = append(progs[name], listingLine{slot, uint8(op), m[3]})
	}
	return progs, nil
}
