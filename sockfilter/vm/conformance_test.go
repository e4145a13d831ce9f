package vm_test

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// The conformance tests run files in the format of the public
// bpf_conformance suite (github.com/Alan-Jowett/bpf_conformance,
// tests/*.data): a program in `-- asm` (or its 64-bit words in `-- raw`),
// the input memory in `-- mem` as hex bytes, and the value r0 must hold in
// `-- result`, or `-- error` for a program that must be refused. Each
// program goes bytes → asm.Disassemble → vm.New → RunMemory, as an outside
// check would run it: `-- asm` is read with asm.Parse when it is written
// in purebpf's syntax, else with the suite's own syntax (see
// assembleConformance), and assembled.
//
// testdata/conformance holds purebpf's own files, written from RFC 9669
// and the kernel's semantics, run always. The suite itself is not part of
// the repository: point PUREBPF_CONFORMANCE_DIR at its tests directory (or
// at several directories, separated by the path list separator) to run it:
//
//	git clone https://github.com/Alan-Jowett/bpf_conformance
//	PUREBPF_CONFORMANCE_DIR=$PWD/bpf_conformance/tests go test ./sockfilter/vm -run Conformance -v
//
// The suite's negative/ directory tests its runner more than runtimes:
// its files that hold a result are meant to fail, those marked `-- error`
// with a message expect the plugin to print it, and those marked `--
// error` alone hold instructions with a non-zero unused field, which a
// runtime must refuse. This harness counts a file of a directory named
// negative as passed when it is refused or gives another result, or, for
// the unused-field programs, when Disassemble or vm.New refuses them.

// confCase is one .data file.
type confCase struct {
	asm     string
	raw     []byte
	mem     []byte
	result  uint64
	hasRes  bool
	invalid bool   // `-- error`: the program must be refused
	errText string // the error the suite's runner expects its plugin to print
}

func parseConformance(text string) (confCase, error) {
	var c confCase
	section := ""
	var asmText, raw, mem, result strings.Builder
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if name, ok := strings.CutPrefix(line, "-- "); ok {
			section = strings.TrimSpace(name)
			if section == "error" {
				c.invalid = true
			}
			continue
		}
		switch section {
		case "asm":
			asmText.WriteString(line + "\n")
		case "raw":
			raw.WriteString(line + " ")
		case "mem":
			mem.WriteString(line + " ")
		case "result":
			result.WriteString(line + " ")
		case "error":
			c.errText += strings.TrimSpace(line)
		}
	}
	c.asm = asmText.String()
	var err error
	if c.raw, err = parseRaw(raw.String()); err != nil {
		return c, err
	}
	if c.mem, err = hex.DecodeString(strings.Join(strings.Fields(mem.String()), "")); err != nil {
		return c, fmt.Errorf("-- mem: %v", err)
	}
	if r := strings.TrimSpace(result.String()); r != "" {
		c.hasRes = true
		if c.result, err = strconv.ParseUint(r, 0, 64); err != nil {
			return c, fmt.Errorf("-- result: %v", err)
		}
	}
	return c, nil
}

// parseRaw reads `-- raw`: 64-bit words, hex with 0x or decimal, each an
// instruction as its little-endian value; or, as the suite's negative
// tests write it, bytes of two hex digits.
func parseRaw(s string) ([]byte, error) {
	f := strings.Fields(s)
	bytes := len(f) > 0 && len(f)%8 == 0
	for _, w := range f {
		bytes = bytes && len(w) == 2
	}
	if bytes {
		return hex.DecodeString(strings.Join(f, ""))
	}
	var b []byte
	for _, w := range f {
		v, err := strconv.ParseUint(w, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("-- raw: %v", err)
		}
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b, nil
}

// program returns the bytes of c's program.
func (c *confCase) program() ([]byte, error) {
	if len(c.raw) > 0 {
		return c.raw, nil
	}
	if insns, err := asm.Parse(c.asm); err == nil {
		return insns.Assemble()
	}
	return assembleConformance(c.asm)
}

// errRefused wraps the errors of the steps before the run: the program
// was refused.
var errRefused = errors.New("refused")

// run returns r0, or the error of the step that failed: wrapping
// errRefused for assembly, Disassemble and vm.New.
func (c *confCase) run(opts *vm.Options) (uint64, error) {
	code, err := c.program()
	if err != nil {
		return 0, fmt.Errorf("%w: assemble: %w", errRefused, err)
	}
	insns, err := asm.Disassemble(code)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errRefused, err)
	}
	v, err := vm.New(insns, opts)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errRefused, err)
	}
	return v.RunMemory(c.mem)
}

// passes reports whether c gives its expected outcome with opts: its
// result, or for a file marked -- error a refusal before the run; in a
// negative directory, a refusal or another result.
func (c *confCase) passes(opts *vm.Options, negative bool) (bool, string) {
	r0, err := c.run(opts)
	switch {
	case negative && c.invalid && c.errText != "":
		// The runner's own test: it expects the plugin to fail with a
		// message, which a runtime that runs the program or refuses it in
		// its own words does not print.
		return true, ""
	case c.invalid:
		return errors.Is(err, errRefused), fmt.Sprintf("program marked -- error was not refused: r0 = %#x, %v", r0, err)
	case negative:
		return err != nil || !c.hasRes || r0 != c.result, fmt.Sprintf("the runner's negative test gave its result %#x", r0)
	case err != nil:
		return false, err.Error()
	case !c.hasRes:
		return false, "no -- result"
	}
	return r0 == c.result, fmt.Sprintf("r0 = %#x, want %#x", r0, c.result)
}

// runConformanceDir runs the .data files of dir and returns how many
// passed of how many, and how many would pass under the kernel's rules
// (Options.Kernel).
func runConformanceDir(t *testing.T, dir string) (passed, kernel, total int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.data"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .data files in %s: %v", dir, err)
	}
	negative := filepath.Base(filepath.Clean(dir)) == "negative"
	for _, file := range files {
		total++
		t.Run(strings.TrimSuffix(filepath.Base(file), ".data"), func(t *testing.T) {
			text, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := parseConformance(string(text))
			if err != nil {
				t.Fatal(err)
			}
			if ok, why := c.passes(nil, negative); ok {
				passed++
			} else {
				t.Error(why)
			}
			if ok, _ := c.passes(&vm.Options{Kernel: true}, negative); ok {
				kernel++
			}
		})
	}
	return passed, kernel, total
}

// TestConformance runs testdata/conformance, purebpf's own files.
func TestConformance(t *testing.T) {
	passed, kernel, total := runConformanceDir(t, filepath.Join("testdata", "conformance"))
	t.Logf("%d of %d passed (%d under the kernel's rules)", passed, total, kernel)
}

// TestConformanceSuite runs the directories PUREBPF_CONFORMANCE_DIR names.
func TestConformanceSuite(t *testing.T) {
	dirs := os.Getenv("PUREBPF_CONFORMANCE_DIR")
	if dirs == "" {
		t.Skip("set PUREBPF_CONFORMANCE_DIR to the tests directory of github.com/Alan-Jowett/bpf_conformance to run the suite")
	}
	for _, dir := range filepath.SplitList(dirs) {
		passed, kernel, total := runConformanceDir(t, dir)
		t.Logf("%s: %d of %d passed (%d under the kernel's rules, Options.Kernel)", dir, passed, total, kernel)
	}
}
