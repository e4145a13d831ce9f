package sockfilter

import (
	"errors"
	"os"
	"os/exec"
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
	const loadHint = "needs CAP_BPF (Linux 5.8) or CAP_SYS_ADMIN, which the process does not hold"
	if p, err := Load(connAcceptAll, nil); err != nil {
		t.Logf("Load: %v", err)
		if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), loadHint) {
			t.Errorf("Load error %q; want EPERM saying %q", err, loadHint)
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
	const listenHint = "needs CAP_NET_RAW, which the process does not hold"
	if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), listenHint) || strings.Contains(err.Error(), "CAP_BPF") {
		t.Errorf("Listen error %q; want EPERM saying %q, not naming CAP_BPF", err, listenHint)
	}
}

// connCapsChild names, in the environment of the test binary that
// TestCapabilityHints runs, the capabilities it was run without.
const connCapsChild = "PUREBPF_CONN_CAPS_CHILD"

// TestCapabilityHints runs this test binary again as root without one
// capability at a time (setpriv(1) --bounding-set), where
// TestCapabilityHintsChild checks that Load and Listen name what is
// missing, and only that.
func TestCapabilityHints(t *testing.T) {
	testutil.RequirePrivileged(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv(1) is needed to drop capabilities: install util-linux")
	}
	for _, drop := range []string{"net_raw", "bpf,sys_admin"} {
		t.Run("without "+drop, func(t *testing.T) {
			caps := "-" + strings.ReplaceAll(drop, ",", ",-")
			cmd := exec.Command(setpriv, "--inh-caps="+caps, "--bounding-set="+caps, os.Args[0],
				"-test.run=^TestCapabilityHintsChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), connCapsChild+"="+drop)
			out, err := cmd.CombinedOutput()
			t.Logf("run without %s:\n%s", drop, out)
			if err != nil || !strings.Contains(string(out), "--- PASS: TestCapabilityHintsChild") {
				t.Fatalf("run without %s failed: %v", drop, err)
			}
		})
	}
}

// TestCapabilityHintsChild is the other half of TestCapabilityHints; run
// directly, it skips.
func TestCapabilityHintsChild(t *testing.T) {
	dropped := os.Getenv(connCapsChild)
	if dropped == "" {
		t.Skip("run by TestCapabilityHints")
	}
	p, loadErr := Load(connAcceptAll, nil)
	if loadErr == nil {
		defer p.Close()
	} else {
		p = new(Program)
	}
	c, listenErr := Listen("lo", p, nil)
	if listenErr == nil {
		c.Close()
	}
	t.Logf("Load: %v\nListen: %v", loadErr, listenErr)
	switch dropped {
	case "net_raw":
		if loadErr != nil {
			t.Errorf("Load without CAP_NET_RAW: %v; want it to load", loadErr)
		}
		if !errors.Is(listenErr, unix.EPERM) || !strings.Contains(listenErr.Error(), "needs CAP_NET_RAW, which the process does not hold") || strings.Contains(listenErr.Error(), "CAP_BPF") {
			t.Errorf("Listen without CAP_NET_RAW: %v; want EPERM naming CAP_NET_RAW alone", listenErr)
		}
	case "bpf,sys_admin":
		if loadErr == nil {
			t.Skip("Load succeeded: unprivileged BPF is enabled on this machine")
		}
		if !errors.Is(loadErr, unix.EPERM) || !strings.Contains(loadErr.Error(), "needs CAP_BPF (Linux 5.8) or CAP_SYS_ADMIN, which the process does not hold") || strings.Contains(loadErr.Error(), "CAP_NET_RAW") {
			t.Errorf("Load without CAP_BPF and CAP_SYS_ADMIN: %v; want EPERM naming them alone", loadErr)
		}
		_, err := Load(straightLine(maxInsnsUnprivileged+1), nil)
		if err == nil || !errors.Is(err, unix.E2BIG) || !strings.Contains(err.Error(), "4097 instructions is more than the 4096 the kernel loads without CAP_BPF or CAP_SYS_ADMIN (BPF_MAXINSNS)") {
			t.Errorf("Load of 4097 instructions without CAP_BPF: %v; want E2BIG saying the limit", err)
		}
		// The socket opens (CAP_NET_RAW is there); the program is what fails.
		if listenErr == nil || strings.Contains(listenErr.Error(), "CAP_") || !errors.Is(listenErr, ErrClosed) {
			t.Errorf("Listen with a program never loaded: %v; want the program's error, not a capability's", listenErr)
		}
	}
}
