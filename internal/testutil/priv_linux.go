package testutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// Capability numbers from linux/capability.h.
const (
	capNetRaw   = 13
	capSysAdmin = 21
	capBPF      = 39
)

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
