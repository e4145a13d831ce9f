package pcapfilter

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// FuzzCompile checks that Compile never panics, that its errors are
// *Error (or the bound on complexity), and that every program it
// returns assembles. TestCompileCorpusLoads loads the programs of the seed
// corpus (testdata/fuzz/FuzzCompile) and of the expression list.
func FuzzCompile(f *testing.F) {
	for _, expr := range testutil.Expressions(f) {
		f.Add(expr)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
			insns, err := Compile(expr, link)
			if err != nil {
				var ee *Error
				if !errors.As(err, &ee) && !errors.Is(err, errTooComplex) {
					t.Fatalf("Compile(%q, %v): error %v is not an *Error", expr, link, err)
				}
				continue
			}
			if _, err := insns.Assemble(); err != nil {
				t.Fatalf("Compile(%q, %v): program does not assemble: %v\n%v", expr, link, err, insns)
			}
		}
	})
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
// seed corpus and the expression list, for both link types: the verifier
// must accept them all.
func TestCompileCorpusLoads(t *testing.T) {
	testutil.RequirePrivileged(t)
	exprs := append(readFuzzCorpus(t), testutil.Expressions(t)...)
	loaded := 0
	for _, expr := range exprs {
		for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
			insns, err := Compile(expr, link)
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
