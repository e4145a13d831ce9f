// Package testutil holds helpers shared by purebpf's tests.
package testutil

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// PrivilegedEnv is the environment variable that controls privileged tests.
// When it is "require", a test that needs privileges fails instead of
// skipping, so CI cannot pass by silently skipping them.
const PrivilegedEnv = "PUREBPF_PRIVILEGED"

// Capability numbers from linux/capability.h.
const (
	capNetRaw   = 13
	capSysAdmin = 21
	capBPF      = 39
)

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

// Privileged reports whether the effective capability set holds what
// purebpf's privileged operations need: CAP_NET_RAW, and CAP_BPF or
// CAP_SYS_ADMIN.
func Privileged() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.Geteuid() == 0
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	return has(capNetRaw) && (has(capBPF) || has(capSysAdmin))
}
