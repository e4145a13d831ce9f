package sockfilter

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
	"github.com/purebpf/purebpf/sockfilter/skb"
	"github.com/purebpf/purebpf/sockfilter/vm"

	"github.com/purebpf/purebpf/internal/testutil"
)

// TestCompileLiveMatchesTest attaches compiled programs to packet sockets
// on lo, injects generated frames there, and checks that each frame the
// socket with the accept-all program (the empty expression) saw was
// delivered by the filtered socket exactly when Program.Test accepts it:
// the verdict on a live socket, where skb->data is the link-layer header,
// equals the one under BPF_PROG_TEST_RUN, where it is the network header.
// For `len` expressions, whose programs read skb->len (the frame length on
// the socket, 14 bytes less under Test), the reference is sockfilter/vm's
// view of a live socket, VM.RunFrame.
func TestCompileLiveMatchesTest(t *testing.T) {
	testutil.RequirePrivileged(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	frames := testutil.GenFrames(3, 200)
	// Frames as sent, and as lo's receive path delivers a tagged frame:
	// with its outer tag moved out of the data (skb_vlan_untag).
	ours := make(map[string]bool)
	for _, f := range frames {
		ours[string(f)] = true
		if tpid := binary.BigEndian.Uint16(f[12:]); (tpid == 0x8100 || tpid == 0x88a8) && len(f) >= 18 {
			ours[string(append(append([]byte{}, f[:12]...), f[16:]...))] = true
		}
	}
	all := connListen(t, "lo", connLoad(t, mustCompile(t, "")), nil)
	for _, expr := range []string{"tcp port 80", "udp and (port 53 or port 67)", "len > 100", "less 60",
		"vlan", "host 10.0.0.1 and not icmp", "tcp[tcpflags] & tcp-syn != 0", "ip6 and greater 90",
		"udp and dst port 53", "port 53 or tcp src and dst port 80"} {
		t.Run(expr, func(t *testing.T) {
			insns := mustCompile(t, expr)
			prog := connLoad(t, insns)
			// A program that reads `len` sees skb->len, 14 bytes short
			// under Test: the live socket must deliver what the VM's
			// view of a live socket accepts.
			var ref *vm.VM
			for _, ins := range insns {
				if ins.OpCode == skb.Len.Load(0, 0).OpCode && ins.Offset == int16(skb.Len) {
					v, err := vm.New(insns, nil)
					if err != nil {
						t.Fatal(err)
					}
					ref = v
					break
				}
			}
			live := connListen(t, "lo", prog, nil)
			connReadAll(t, all, nil, 50*time.Millisecond) // drain
			injectFrames(t, lo.Index, frames)
			delivered := make(map[string]int)
			for _, f := range connReadAll(t, live, nil, 300*time.Millisecond) {
				delivered[string(f.data)]++
			}
			seen, refused, accepted := 0, 0, 0
			untestable := make(map[string]bool)
			for _, f := range connReadAll(t, all, nil, 300*time.Millisecond) {
				if !ours[string(f.data)] {
					continue
				}
				verdict, err := prog.Test(f.data, packet.LinkEthernet)
				if ref != nil {
					verdict, err = ref.RunFrame(f.data, packet.LinkEthernet)
				}
				if err != nil {
					refused++ // too short for BPF_PROG_TEST_RUN
					untestable[string(f.data)] = true
					continue
				}
				seen++
				key := string(f.data)
				switch {
				case verdict != 0 && delivered[key] > 0:
					delivered[key]--
					accepted++
				case verdict != 0:
					t.Errorf("Test accepts a frame the live socket did not deliver: % x", f.data)
				}
			}
			for f, n := range delivered {
				if n > 0 && ours[f] && !untestable[f] {
					t.Errorf("the live socket delivered %d copies Test rejects: % x", n, []byte(f))
				}
			}
			t.Logf("%d frames seen live and tested (%d too short to test), %d accepted", seen, refused, accepted)
			if seen+refused < len(frames) {
				t.Errorf("only %d of %d injected frames seen", seen+refused, len(frames))
			}
		})
	}
}

func mustCompile(t testing.TB, expr string) asm.Instructions {
	t.Helper()
	insns, err := pcapfilter.Compile(expr, packet.LinkEthernet)
	if err != nil {
		t.Fatal(err)
	}
	return insns
}

// injectFrames sends frames on the interface with index ifindex through a
// packet socket.
func injectFrames(t testing.TB, ifindex int, frames [][]byte) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrLinklayer{Ifindex: ifindex, Protocol: 0x0300} // htons(ETH_P_ALL)
	for _, f := range frames {
		if err := unix.Sendto(fd, f, 0, sa); err != nil {
			t.Fatalf("send % x: %v", f, err)
		}
	}
}
