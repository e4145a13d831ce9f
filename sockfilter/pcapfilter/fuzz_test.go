package pcapfilter

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// FuzzCompile checks that Compile never panics; that its errors are
// *Error, one line of valid UTF-8 of bounded length whatever the
// expression; and that every program it returns assembles, keeps its
// jumps within reach once the kernel has expanded it (see xlatedLen) and,
// when the test is privileged, loads. TestCompileCorpusLoads loads the
// programs of the seed corpus (testdata/fuzz/FuzzCompile) and of the
// expression list.
func FuzzCompile(f *testing.F) {
	for _, expr := range testutil.Expressions(f) {
		f.Add(expr)
	}
	load := testutil.Privileged()
	f.Fuzz(func(t *testing.T, expr string) {
		for _, c := range fuzzLinks {
			link := c.link
			insns, err := CompileWith(expr, link, &CompileOptions{Offline: c.offline})
			if err != nil {
				checkCompileError(t, expr, err)
				continue
			}
			if _, err := insns.Assemble(); err != nil {
				t.Fatalf("Compile(%q, %v): program does not assemble: %v\n%v", expr, link, err, insns)
			}
			if i, d := farJump(insns); i >= 0 {
				t.Fatalf("Compile(%q, %v): a jump across %d expanded instructions", expr, link, d)
			}
			if load {
				p, err := sockfilter.Load(insns, nil)
				if err != nil {
					t.Fatalf("Compile(%q, %v): the kernel refuses the program: %v", expr, link, err)
				}
				p.Close()
			}
		}
	})
}

// fuzzLinks are the link types and forms FuzzCompile compiles for: the
// cooked links live (for the "any" socket) and offline (frames with the
// header).
var fuzzLinks = []struct {
	link    packet.LinkType
	offline bool
}{
	{packet.LinkEthernet, false}, {packet.LinkRawIP, false},
	{packet.LinkLinuxSLL, false}, {packet.LinkLinuxSLL, true},
	{packet.LinkLinuxSLL2, false}, {packet.LinkLinuxSLL2, true},
}

// maxErrorLen bounds the length of an error of Compile: its excerpt and
// the tokens it quotes are cut, whatever the length of the expression.
const maxErrorLen = 400

// checkCompileError checks that err, Compile's error for expr, is an
// *Error that says where in expr, in one short line of valid UTF-8.
func checkCompileError(t *testing.T, expr string, err error) {
	t.Helper()
	var ee *Error
	if !errors.As(err, &ee) {
		t.Fatalf("Compile(%q): error %v is not an *Error", expr, err)
	}
	msg := err.Error()
	if !utf8.ValidString(msg) || strings.ContainsAny(msg, "\n\r") || len(msg) > maxErrorLen {
		t.Fatalf("Compile(%q): error is not one short line of valid UTF-8 (%d bytes): %q", expr, len(msg), msg)
	}
	if ee.Expr != expr || ee.Column < 0 || ee.Column > len(expr)+1 {
		t.Fatalf("Compile(%q): error %q has expression %q, column %d", expr, msg, ee.Expr, ee.Column)
	}
}

// readFuzzCorpus returns the strings of the seed corpus of FuzzCompile.
func readFuzzCorpus(t testing.TB) []string {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", "FuzzCompile")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "string(") {
			t.Fatalf("%s: not a go fuzz corpus file of one string", e.Name())
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		exprs = append(exprs, s)
	}
	return exprs
}

// TestCompileCorpusLoads loads every program Compile produces from the
// seed corpus and the expression list, for every link type and form of
// fuzzLinks: the verifier must accept them all.
func TestCompileCorpusLoads(t *testing.T) {
	testutil.RequirePrivileged(t)
	exprs := append(readFuzzCorpus(t), testutil.Expressions(t)...)
	loaded := 0
	for _, expr := range exprs {
		for _, c := range fuzzLinks {
			link := c.link
			insns, err := CompileWith(expr, link, &CompileOptions{Offline: c.offline})
			if err != nil {
				continue
			}
			p, err := sockfilter.Load(insns, nil)
			if err != nil {
				t.Errorf("Compile(%q, %v): the kernel refuses the program:\n%v\n%v", expr, link, insns, err)
				continue
			}
			p.Close()
			loaded++
		}
	}
	t.Logf("%d programs from %d expressions loaded", loaded, len(exprs))
	if loaded < len(exprs) {
		t.Errorf("only %d programs compiled and loaded", loaded)
	}
}
