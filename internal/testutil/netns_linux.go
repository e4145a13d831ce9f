package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// NetNS is a network namespace a test created with ip-netns(8). Its
// interfaces and traffic are the test's alone: frames sent inside it never
// reach the host's interfaces.
type NetNS struct {
	// Name is the namespace's name, as `ip netns` and `ip -n` take it.
	Name string
}

var netnsSeq atomic.Uint32

// NewNetNS creates a network namespace with its loopback interface up and
// IPv6 off (so that no router solicitations or DAD probes add frames a
// test did not send), and deletes it, with every interface in it, when the
// test ends. It needs CAP_SYS_ADMIN; call RequirePrivileged first.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	ns := &NetNS{Name: fmt.Sprintf("purebpf-%d-%d", os.Getpid(), netnsSeq.Add(1))}
	runCmd(t, "ip", "netns", "add", ns.Name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("delete network namespace %s: %v: %s", ns.Name, err, out)
		}
	})
	ns.Exec(t, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	ns.IP(t, "link", "set", "lo", "up")
	return ns
}

// IP runs `ip -n <ns> args...` and returns its output, failing t if it
// fails.
func (ns *NetNS) IP(t testing.TB, args ...string) string {
	t.Helper()
	return runCmd(t, "ip", append([]string{"-n", ns.Name}, args...)...)
}

// Exec runs the command name with args inside the namespace
// (`ip netns exec`) and returns its output, failing t if it fails.
func (ns *NetNS) Exec(t testing.TB, name string, args ...string) string {
	t.Helper()
	return runCmd(t, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Do runs fn on the calling goroutine with its thread switched into the
// namespace (setns(2)), and switches back afterwards. Sockets fn opens
// belong to the namespace for their whole life and may be used from any
// goroutine after Do returns; goroutines fn starts do not run in it. If the
// thread cannot be switched back, it stays locked to the goroutine, and the
// runtime ends it when the goroutine exits.
func (ns *NetNS) Do(t testing.TB, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open own network namespace: %v", err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns.Name)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open network namespace %s: %v", ns.Name, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("enter network namespace %s: %v", ns.Name, os.NewSyscallError("setns", err))
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Errorf("leave network namespace %s: %v (thread left locked)", ns.Name, os.NewSyscallError("setns", err))
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

// Veth is a veth pair inside a NetNS: frames sent on one end arrive on the
// other. Both ends are up, with IPv4 addresses on one /24.
type Veth struct {
	NS *NetNS
	// A and B name the two ends; AddrA and AddrB are their IPv4 addresses.
	A, B         string
	AddrA, AddrB string
}

// NewVeth creates a veth pair in a new namespace, addresses its ends
// 10.199.0.1/24 (A) and 10.199.0.2/24 (B), and brings them up. The
// namespace and the pair go when the test ends.
func NewVeth(t testing.TB) *Veth {
	t.Helper()
	v := &Veth{NS: NewNetNS(t), A: "pbveth0", B: "pbveth1", AddrA: "10.199.0.1", AddrB: "10.199.0.2"}
	v.NS.IP(t, "link", "add", v.A, "type", "veth", "peer", "name", v.B)
	v.NS.IP(t, "addr", "add", v.AddrA+"/24", "dev", v.A)
	v.NS.IP(t, "addr", "add", v.AddrB+"/24", "dev", v.B)
	v.NS.IP(t, "link", "set", v.A, "up")
	v.NS.IP(t, "link", "set", v.B, "up")
	v.NS.WaitTransmit(t, v.A, v.B)
	return v
}

// WaitTransmit waits until each of the interfaces ifnames in ns can
// transmit: it is up, has a carrier, and has its queueing discipline
// attached. Call it after bringing up a veth end (or a device stacked on
// one) that frames are to be sent out of.
//
// Bringing up the second end of a veth pair turns the carrier of both ends
// on, but only the end being brought up gets its queueing discipline
// attached there and then (dev_open, dev_activate). The other end's waits
// for the kernel's link-watch work, which runs later: on a loaded machine,
// many milliseconds later. Until it does, that end still has the noop
// qdisc, which drops every frame sent out of it (counted as TX dropped,
// kfree_skb reason QDISC_DROP) before any packet socket sees it; sendto(2)
// returns success all the same. RTM_GETLINK takes the RTNL lock, under
// which the link-watch work runs (and since Linux 6.8 runs the device's
// pending work itself), so once ip-link(8) shows a qdisc other than noop,
// the device transmits.
func (ns *NetNS) WaitTransmit(t testing.TB, ifnames ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, name := range ifnames {
		for {
			out := ns.IP(t, "-o", "link", "show", "dev", name)
			if linkTransmits(out) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("interface %s in %s did not become ready to transmit (up, carrier, a qdisc other than noop): %s", name, ns.Name, strings.TrimSpace(out))
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// linkTransmits reports whether a line of `ip -o link show` output shows
// an interface that is up, has a carrier and has a qdisc other than noop.
func linkTransmits(line string) bool {
	f := strings.Fields(line)
	var flags, qdisc string
	for i, w := range f {
		switch {
		case flags == "" && strings.HasPrefix(w, "<") && strings.HasSuffix(w, ">"):
			flags = w
		case w == "qdisc" && i+1 < len(f) && qdisc == "":
			qdisc = f[i+1]
		}
	}
	set := strings.Split(strings.Trim(flags, "<>"), ",")
	return slices.Contains(set, "UP") && slices.Contains(set, "LOWER_UP") && qdisc != "" && qdisc != "noop"
}

func runCmd(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
