package sockfilter

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux) is needed to drop privileges: %v", err)
	}
	// nobody must be able to reach the binary: go test's work directory is
	// private to root.
	dir, err := os.MkdirTemp("", "purebpf-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sockfilter.test")
	if err := connCopyFile(bin, os.Args[0]); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
		bin, "-test.run=^TestConnUnprivilegedChild$", "-test.v", "-test.count=1")
	cmd.Dir = dir
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

func connCopyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
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
