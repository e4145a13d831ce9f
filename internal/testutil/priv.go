// Package testutil holds helpers shared by purebpf's tests.
package testutil

import (
	"os"
	"testing"
)

// PrivilegedEnv is the environment variable that controls privileged tests.
// When it is "require", a test that needs privileges fails instead of
// skipping, so CI cannot pass by silently skipping them.
const PrivilegedEnv = "PUREBPF_PRIVILEGED"

// RequirePrivileged skips t with a one-line hint unless the process may load
// BPF programs and open AF_PACKET sockets (root, or CAP_BPF and
// CAP_NET_RAW). With PUREBPF_PRIVILEGED=require it fails instead.
func RequirePrivileged(t testing.TB) {
	t.Helper()
	if Privileged() {
		return
	}
	const hint = "needs root or CAP_BPF+CAP_NET_RAW: run `sudo go test ./...` (set PUREBPF_PRIVILEGED=require to fail instead of skip)"
	if os.Getenv(PrivilegedEnv) == "require" {
		t.Fatal("privileged test cannot run: " + hint)
	}
	t.Skip("skipped: " + hint)
}
