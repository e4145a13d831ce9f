package sockfilter

import (
	"errors"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"golang.org/x/sys/unix"
)

// straightLine returns a program of n instructions: n-1 moves and an exit.
func straightLine(n int) asm.Instructions {
	insns := make(asm.Instructions, n)
	for i := range n - 1 {
		insns[i] = asm.Mov.Imm(asm.R0, 0)
	}
	insns[n-1] = asm.Exit()
	return insns
}

// TestLoadTooManyInstructions checks that Load refuses a program past the
// kernel's size limit before it makes the system call, saying the limit,
// where the kernel would say only E2BIG, and that a program at the limit
// for a process without CAP_BPF still loads with it.
func TestLoadTooManyInstructions(t *testing.T) {
	testutil.RequirePrivileged(t)
	calls := recordLoads(t)
	_, err := Load(straightLine(maxInsns+1), nil)
	const want = "load program: program of 1000001 instructions is more than the 1000000 the kernel loads (BPF_COMPLEXITY_LIMIT_INSNS); simplify the filter: argument list too long"
	if err == nil || err.Error() != want || !errors.Is(err, unix.E2BIG) {
		t.Errorf("Load of %d instructions: %v; want %q, matching E2BIG", maxInsns+1, err, want)
	}
	if len(*calls) != 0 {
		t.Errorf("BPF_PROG_LOAD made anyway:\n%s", strings.Join(*calls, "\n"))
	}
	p := mustLoad(t, straightLine(maxInsnsUnprivileged+1), nil)
	if info, err := p.Info(); err != nil || info.XlatedInsns != maxInsnsUnprivileged+1 {
		t.Errorf("Info = %+v, %v; want %d instructions", info, err, maxInsnsUnprivileged+1)
	}
}
