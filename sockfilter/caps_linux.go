package sockfilter

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// capability is a Linux capability, a bit of the sets capget(2) returns
// (capabilities(7)).
type capability uint

// The capabilities a Conn or a Program needs.
const (
	capNetRaw   capability = unix.CAP_NET_RAW   // packet sockets (packet(7))
	capSysAdmin capability = unix.CAP_SYS_ADMIN // bpf(2) before Linux 5.8, and still in its place
	capBPF      capability = unix.CAP_BPF       // bpf(2), Linux 5.8
)

// capNames are the names capabilities(7) gives.
var capNames = map[capability]string{
	capNetRaw:   "CAP_NET_RAW",
	capSysAdmin: "CAP_SYS_ADMIN",
	capBPF:      "CAP_BPF",
}

// effectiveCaps reports which of caps the calling thread holds in its
// effective set (capget(2)). ok is false if capget fails.
func effectiveCaps(caps ...capability) (held map[capability]bool, ok bool) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil, false
	}
	held = make(map[capability]bool, len(caps))
	for _, c := range caps {
		held[c] = data[c/32].Effective&(1<<(c%32)) != 0
	}
	return held, true
}

// bpfCapable reports whether the process may load programs as the kernel's
// bpf_capable() allows: with CAP_BPF or CAP_SYS_ADMIN.
func bpfCapable() bool {
	held, ok := effectiveCaps(capBPF, capSysAdmin)
	return ok && (held[capBPF] || held[capSysAdmin])
}

// listenPermHint says why socket(2) refused a packet socket: the
// capability the process lacks, or, if it holds it, that something else
// (a security module, a user namespace) refused.
func listenPermHint() string {
	held, ok := effectiveCaps(capNetRaw)
	switch {
	case !ok:
		return "needs CAP_NET_RAW"
	case !held[capNetRaw]:
		return "needs CAP_NET_RAW, which the process does not hold (run as root, or grant it: setcap cap_net_raw+ep)"
	}
	return "refused although the process holds CAP_NET_RAW: a security module, or a user namespace that does not own the network namespace, may forbid packet sockets"
}

// loadPermHint says why BPF_PROG_LOAD was refused: the capability the
// process lacks, or, if it holds one, that something else refused.
func loadPermHint() string {
	held, ok := effectiveCaps(capBPF, capSysAdmin)
	switch {
	case !ok:
		return "needs CAP_BPF or CAP_SYS_ADMIN"
	case !held[capBPF] && !held[capSysAdmin]:
		hint := "needs CAP_BPF (Linux 5.8) or CAP_SYS_ADMIN, which the process does not hold (run as root, or grant it: setcap cap_bpf+ep)"
		if v := unprivilegedBPFDisabled(); v != "" && v != "0" {
			hint += "; unprivileged socket filters are off (kernel.unprivileged_bpf_disabled = " + v + ")"
		}
		return hint
	}
	var names []string
	for _, c := range []capability{capBPF, capSysAdmin} {
		if held[c] {
			names = append(names, capNames[c])
		}
	}
	return "refused although the process holds " + strings.Join(names, " and ") + ": a security module or the locked-down kernel may forbid it"
}

// unprivilegedBPFDisabled returns kernel.unprivileged_bpf_disabled, or ""
// if it cannot be read.
func unprivilegedBPFDisabled() string {
	b, err := os.ReadFile("/proc/sys/kernel/unprivileged_bpf_disabled")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
