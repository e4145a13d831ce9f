package sockfilter

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"golang.org/x/sys/unix"
)

// connUnprivChild is set in the environment of the test binary that
// TestConnUnprivileged runs without privileges.
const connUnprivChild = "PUREBPF_CONN_UNPRIVILEGED_CHILD"

// TestConnUnprivileged runs this test binary again as nobody with no
// capabilities (setpriv(1)), where TestConnUnprivilegedChild checks that
// Load and Listen fail with errors that match EPERM and say what is
// missing.
func TestConnUnprivileged(t *testing.T) {
	testutil.RequirePrivileged(t)
	cmd := testutil.NobodyCommand(t, os.Args[0], "-test.run=^TestConnUnprivilegedChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), connUnprivChild+"=1", testutil.PrivilegedEnv+"=")
	out, err := cmd.CombinedOutput()
	t.Logf("unprivileged run:\n%s", out)
	if err != nil {
		t.Fatalf("unprivileged run failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestConnUnprivilegedChild") {
		t.Fatal("the unprivileged run did not pass TestConnUnprivilegedChild")
	}
}

// TestConnUnprivilegedChild is the unprivileged half of
// TestConnUnprivileged; run directly, it skips.
func TestConnUnprivilegedChild(t *testing.T) {
	if os.Getenv(connUnprivChild) != "1" {
		t.Skip("run by TestConnUnprivileged")
	}
	if testutil.Privileged() {
		t.Fatal("still privileged after setpriv")
	}
	const hint = "needs CAP_BPF and CAP_NET_RAW (or root)"
	if p, err := Load(connAcceptAll, nil); err != nil {
		t.Logf("Load: %v", err)
		if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), hint) {
			t.Errorf("Load error %q; want EPERM saying %q", err, hint)
		}
	} else {
		// kernel.unprivileged_bpf_disabled=0 lets anyone load socket filters.
		t.Log("Load succeeded: unprivileged BPF is enabled on this machine")
		p.Close()
	}
	// Listen opens its socket before it touches the program, so a zero
	// Program will do: the socket is what must fail.
	c, err := Listen("lo", new(Program), nil)
	if err == nil {
		c.Close()
		t.Fatal("Listen succeeded without privileges")
	}
	t.Logf("Listen: %v", err)
	if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), hint) {
		t.Errorf("Listen error %q; want EPERM saying %q", err, hint)
	}
}
