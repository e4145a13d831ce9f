package vm

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestInlining pins what the filter form's speed rests on: the helpers of
// (*filter).run inline into it, which the compiler stops doing when a
// function grows "big" (past some 5,000 nodes it lowers the cost it lets
// inlinees have to 20), and then run calls them, spills its state around
// the calls and is half as fast. It builds the package with -gcflags=-m=2,
// as net/netip's inlining test does.
func TestInlining(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package")
	}
	if _, err := os.Stat("filterrun.go"); err != nil {
		t.Skip("needs the package's source in the working directory")
	}
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command")
	}
	out, err := exec.Command(gotool, "build", "-gcflags=-m=2", ".").CombinedOutput()
	if err != nil {
		// The package compiled, or this test would not run: the go
		// command cannot work here (no build cache for nobody, say).
		t.Skipf("go build cannot run here: %v\n%s", err, out)
	}
	log := string(out)
	if strings.Contains(log, "(*filter).run considered 'big'") {
		t.Errorf("(*filter).run is too big for its helpers to inline: make it smaller (move rare instructions to slow)")
	}
	for _, fn := range []string{"absOff", "indOff", "load1", "load2", "load4", "skbLen", "loadBytes",
		"loadBytesRelative", "eq", "gt", "ge", "set", "lt", "nz", "sel", "aluOp32K"} {
		if !strings.Contains(log, "can inline "+fn+" with cost") {
			t.Errorf("%s does not inline", fn)
		}
	}
	for _, call := range []string{"load2", "load4", "indOff", "loadBytesRelative", "sel"} {
		if !inlinedIn(log, "./filterrun.go:", call) {
			t.Errorf("run does not inline its calls of %s", call)
		}
	}
}

// inlinedIn reports whether the compiler's log says it inlined a call of
// fn in the file whose lines start with prefix.
func inlinedIn(log, prefix, fn string) bool {
	for line := range strings.Lines(log) {
		if strings.HasPrefix(line, prefix) && strings.HasSuffix(strings.TrimSpace(line), "inlining call to "+fn) {
			return true
		}
	}
	return false
}
