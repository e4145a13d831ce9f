package vm_test

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// liveProbes are programs whose return value, as a live packet socket
// applies it, cuts the frame: the captured length tells what the program
// computed from struct __sk_buff. Each packs fields into a value from 1 to
// 64.
var liveProbes = map[string]string{
	"pkt_type, ingress_ifindex, ifindex, protocol": `
		r6 = r1
		r0 = *(u32 *)(r6 +4)
		r2 = *(u32 *)(r6 +36)
		if r2 == 0x0 goto a
		r0 |= 8
	a:
		r2 = *(u32 *)(r6 +40)
		if r2 != 0x1 goto b
		r0 |= 16
	b:
		r2 = *(u32 *)(r6 +16)
		if r2 != 0x8 goto c
		r0 |= 32
	c:
		r0 += 1
		exit`,
	"len": `
		r0 = *(u32 *)(r1 +0)
		r0 &= 63
		r0 += 1
		exit`,
	"vlan": `
		r0 = *(u32 *)(r1 +20)
		r2 = *(u32 *)(r1 +24)
		r2 &= 7
		r2 <<= 1
		r0 |= r2
		r2 = *(u16 *)(r1 +28)
		if r2 != 0x81 goto out
		r0 |= 16
	out:
		r0 += 1
		exit`,
	"legacy loads and bpf_skb_load_bytes": `
		r6 = r1
		r0 = *(u8 *)skb[0]
		r7 = r0
		r7 &= 7
		r0 = *(u8 *)skb[-1048576]
		r0 &= 7
		r0 <<= 3
		r7 |= r0
		r1 = r6
		r2 = 13
		r3 = r10
		r3 += -8
		r4 = 1
		call bpf_skb_load_bytes
		if r0 == 0x0 goto ok
		r7 = 63
	ok:
		r0 = r7
		r0 += 1
		exit`,
}

// TestLiveFrames checks RunFrameInfo against a live packet socket on lo in
// a network namespace of its own: generated frames are injected there,
// a socket with an accept-all program reads each with what the kernel says
// of it (packet.Info), and a socket with a probe program reads it cut to the
// probe's result, which must be RunFrameInfo's for the frame and its Info.
func TestLiveFrames(t *testing.T) {
	testutil.RequirePrivileged(t)
	frames := testutil.GenFrames(13, 150)
	for name, src := range liveProbes {
		t.Run(name, func(t *testing.T) {
			insns, err := asm.Parse(src)
			if err != nil {
				t.Fatal(err)
			}
			v, err := vm.New(insns, &vm.Options{Kernel: true})
			if err != nil {
				t.Fatal(err)
			}
			probe := loadProgram(t, insns)
			all := loadProgram(t, asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Exit()})
			ns := testutil.NewNetNS(t)
			var a, b *sockfilter.Conn
			ns.Do(t, func() {
				a = listenLo(t, all)
				b = listenLo(t, probe)
				injectLo(t, frames)
			})
			full, cut := readAllFrames(t, a), readAllFrames(t, b)
			if len(full) != len(cut) || len(full) < len(frames) {
				t.Fatalf("the accept-all socket read %d frames, the probe's %d; %d were sent", len(full), len(cut), len(frames))
			}
			bad, values := 0, map[uint32]int{}
			for i, f := range full {
				want, err := v.RunFrameInfo(f.data, packet.LinkEthernet, &f.info)
				if err != nil {
					t.Fatal(err)
				}
				values[want]++
				got := cut[i]
				n := min(int(want), len(f.data))
				if !bytes.Equal(got.data, f.data[:len(got.data)]) || len(got.data) != n {
					if bad++; bad <= 5 {
						t.Errorf("frame %d (% x, %+v): the probe kept %d bytes, RunFrameInfo says %d", i, f.data, f.info, len(got.data), want)
					}
				}
			}
			if len(values) < 3 {
				t.Errorf("the probe gave %d values only: %v", len(values), values)
			}
			t.Logf("%d frames, %d values of the probe", len(full), len(values))
		})
	}
}

type liveFrame struct {
	data []byte
	info packet.Info
}

func listenLo(t *testing.T, prog *sockfilter.Program) *sockfilter.Conn {
	t.Helper()
	c, err := sockfilter.Listen("lo", prog, &sockfilter.Config{LoopbackOutgoing: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// injectLo sends frames on lo through a packet socket.
func injectLo(t *testing.T, frames [][]byte) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrLinklayer{Ifindex: 1, Protocol: 0x0300} // lo, htons(ETH_P_ALL)
	for _, f := range frames {
		if err := unix.Sendto(fd, f, 0, sa); err != nil {
			t.Fatalf("send % x: %v", f, err)
		}
	}
}

// readAllFrames reads frames from c until none comes for a while.
func readAllFrames(t *testing.T, c *sockfilter.Conn) []liveFrame {
	t.Helper()
	var frames []liveFrame
	buf := make([]byte, 1<<16)
	for {
		if err := c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		n, info, err := c.ReadFrame(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return frames
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, liveFrame{bytes.Clone(buf[:n]), info})
	}
}
