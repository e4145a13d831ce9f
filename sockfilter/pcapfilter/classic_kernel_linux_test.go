package pcapfilter

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// classicProgramsEnv sets the number of random programs
// TestFromClassicKernel runs (classicPrograms by default): for a longer
// run, PUREBPF_CLASSIC_PROGRAMS=200000 go test -run FromClassicKernel.
const classicProgramsEnv = "PUREBPF_CLASSIC_PROGRAMS"

// classicPrograms is the number of random programs of a default run.
const classicPrograms = 1500

// TestFromClassicKernel is a differential test of FromClassic and
// FromClassicLinkRelative against the kernel's own classic BPF, on random
// classic programs (classicGen) and generated frames. The kernel's verdict
// is that of the program attached with SO_ATTACH_FILTER to two packet
// sockets on lo in a namespace of the test's own, one SOCK_RAW and one
// SOCK_DGRAM: a third socket sends each frame, and the kernel runs the
// filters on the copy of the outgoing frame it hands to packet sockets
// (dev_queue_xmit_nit), before sendto(2) returns; a socket then holds the
// frame, cut to the filter's return value, or not. The converted programs
// run under Program.Test on the same frame: FromClassicLinkRelative's must
// give what the SOCK_RAW socket received, where skb->data is the
// link-layer header, and FromClassic's what the SOCK_DGRAM one did, where
// it is the network header, as under Program.Test.
//
// The kernel must refuse (EINVAL) exactly the programs FromClassic
// refuses, but for the ancillary loads with no eBPF equivalent, which it
// takes; every program FromClassic converts must load. The programs do
// not read what differs between a packet socket's outgoing frame and
// Program.Test's (the packet type, the CPU, a random number).
func TestFromClassicKernel(t *testing.T) {
	testutil.RequirePrivileged(t)
	n := classicPrograms
	if s := os.Getenv(classicProgramsEnv); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("%s=%q: %v", classicProgramsEnv, s, err)
		}
	}
	k := newKernelClassic(t)
	var frames [][]byte
	for _, f := range testutil.GenFrames(11, 400) {
		if len(f) >= 14 {
			frames = append(frames, f)
		}
	}
	gen := &classicGen{r: rand.New(rand.NewPCG(12, 13))}
	var st classicStats
	start := time.Now()
	for i := 0; i < n && !t.Failed(); i++ {
		prog := gen.program()
		var fs [][]byte
		for range 6 {
			fs = append(fs, frames[gen.r.IntN(len(frames))])
		}
		k.check(t, prog, fs, &st)
	}
	d := time.Since(start)
	t.Logf("%d programs in %v (%.0f a second): the kernel took %d, refused %d; %d without an eBPF equivalent; %d verdicts compared, %d frames let through, %d of them cut",
		n, d.Round(time.Millisecond), float64(n)/d.Seconds(), st.accepted, st.refused, st.noEBPF, st.verdicts, st.passed, st.cut)
	if st.accepted < n/4 || st.refused < n/50 || st.passed < st.verdicts/10 || st.cut < st.passed/10 {
		t.Errorf("the generator made %d programs the kernel takes and %d it refuses, which let %d frames of %d through, %d cut: too few of a kind to test",
			st.accepted, st.refused, st.passed, st.verdicts, st.cut)
	}
}

// classicStats counts what TestFromClassicKernel saw.
type classicStats struct {
	accepted, refused, noEBPF int
	verdicts, passed, cut     int // verdicts compared, frames let through, let through cut
}

// kernelClassic holds the sockets of TestFromClassicKernel.
type kernelClassic struct {
	send, raw, dgram int
	lo               int // the ifindex of lo
	buf              []byte
}

// newKernelClassic opens the sockets in a namespace of their own, closing
// them when t ends.
func newKernelClassic(t *testing.T) *kernelClassic {
	ns := testutil.NewNetNS(t)
	k := &kernelClassic{buf: make([]byte, 1<<16)}
	ns.Do(t, func() {
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		k.lo = lo.Index
		open := func(typ int, proto uint16) int {
			fd, err := unix.Socket(unix.AF_PACKET, typ|unix.SOCK_CLOEXEC, int(htons(proto)))
			if err != nil {
				t.Fatal(os.NewSyscallError("socket", err))
			}
			t.Cleanup(func() { unix.Close(fd) })
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: k.lo}); err != nil {
				t.Fatal(os.NewSyscallError("bind", err))
			}
			return fd
		}
		k.send = open(unix.SOCK_RAW, 0)
		k.raw = open(unix.SOCK_RAW, unix.ETH_P_ALL)
		k.dgram = open(unix.SOCK_DGRAM, unix.ETH_P_ALL)
	})
	return k
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// attach attaches prog to both receiving sockets; it returns the errno of
// SO_ATTACH_FILTER.
func (k *kernelClassic) attach(prog []bpf.RawInstruction) error {
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	for _, fd := range []int{k.raw, k.dgram} {
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, fprog); err != nil {
			return err
		}
	}
	return nil
}

// verdict is what a socket got of a frame: nothing, or the frame cut to
// n bytes.
type verdict struct {
	got bool
	n   int
}

// send sends frame and returns what each receiving socket got of it.
func (k *kernelClassic) send1(t *testing.T, frame []byte) (raw, dgram verdict) {
	to := &unix.SockaddrLinklayer{Ifindex: k.lo, Protocol: htons(ethTypeTrans(frame))}
	if err := unix.Sendto(k.send, frame, 0, to); err != nil {
		t.Fatal(os.NewSyscallError("sendto", err))
	}
	return k.outgoing(t, k.raw), k.outgoing(t, k.dgram)
}

// outgoing returns what fd holds of the frame just sent: the outgoing copy
// (PACKET_OUTGOING). It drops the frames lo has since received, the same
// frames coming back, which the filter saw as well.
func (k *kernelClassic) outgoing(t *testing.T, fd int) verdict {
	var v verdict
	for {
		n, from, err := unix.Recvfrom(fd, k.buf, unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		if errors.Is(err, unix.EAGAIN) {
			return v
		}
		if err != nil {
			t.Fatal(os.NewSyscallError("recvfrom", err))
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			if v.got {
				t.Fatal("two outgoing copies of one frame")
			}
			v = verdict{true, n}
		}
	}
}

// ethTypeTrans returns the protocol eth_type_trans gives a received frame,
// which Program.Test's socket buffer gets: the sending socket gives it to
// the outgoing frame.
func ethTypeTrans(frame []byte) uint16 {
	if t := binary.BigEndian.Uint16(frame[12:]); t >= 0x600 {
		return t
	}
	if len(frame) >= 16 && frame[14] == 0xff && frame[15] == 0xff {
		return unix.ETH_P_802_3
	}
	return unix.ETH_P_802_2
}

// check runs prog on both sides and compares.
func (k *kernelClassic) check(t *testing.T, prog []bpf.RawInstruction, frames [][]byte, st *classicStats) {
	insns := make([]bpf.Instruction, len(prog))
	for i, ins := range prog {
		insns[i] = ins
	}
	raw, rawErr := FromClassic(insns)
	link, linkErr := FromClassicLinkRelative(insns)
	if (rawErr == nil) != (linkErr == nil) {
		t.Fatalf("FromClassic: %v, FromClassicLinkRelative: %v\n%s", rawErr, linkErr, classicListing(prog))
	}
	kerr := k.attach(prog)
	switch {
	case errors.Is(kerr, unix.ENOMEM):
		return // the socket's option memory, not the program
	case kerr != nil && !errors.Is(kerr, unix.EINVAL):
		t.Fatalf("SO_ATTACH_FILTER: %v", kerr)
	case kerr != nil && rawErr == nil:
		t.Fatalf("the kernel refuses the program, FromClassic converts it:\n%s", classicListing(prog))
	case kerr != nil:
		st.refused++
		return
	case errors.Is(rawErr, errNoEBPF):
		st.accepted++
		st.noEBPF++
		return
	case rawErr != nil:
		t.Fatalf("the kernel takes the program, FromClassic refuses it: %v\n%s", rawErr, classicListing(prog))
	}
	st.accepted++
	rawProg := loadClassic(t, prog, raw)
	linkProg := loadClassic(t, prog, link)
	defer rawProg.Close()
	defer linkProg.Close()
	for _, f := range frames {
		kraw, kdgram := k.send1(t, f)
		for _, c := range []struct {
			name   string
			p      *sockfilter.Program
			kernel verdict
			len    int
		}{{"FromClassicLinkRelative, SOCK_RAW", linkProg, kraw, len(f)}, {"FromClassic, SOCK_DGRAM", rawProg, kdgram, len(f) - 14}} {
			ret, err := c.p.Test(f, packet.LinkEthernet)
			if err != nil {
				t.Fatalf("Program.Test: %v", err)
			}
			want := verdict{ret != 0, int(min(uint64(ret), uint64(c.len)))}
			if want != c.kernel {
				t.Errorf("%s: frame % x: the kernel's filter gives %+v, ours returns %d (%+v)\n%s\n%v",
					c.name, f, c.kernel, ret, want, classicListing(prog), c.p.Instructions())
			}
			st.verdicts++
			if c.kernel.got {
				st.passed++
				if c.kernel.n < c.len {
					st.cut++
				}
			}
		}
	}
}

// loadClassic loads a converted program, which must load.
func loadClassic(t *testing.T, prog []bpf.RawInstruction, insns asm.Instructions) *sockfilter.Program {
	t.Helper()
	p, err := sockfilter.Load(insns, nil)
	if err != nil {
		t.Fatalf("the converted program does not load: %v\n%s\n%v", err, classicListing(prog), insns)
	}
	return p
}

// classicListing returns prog a line an instruction, with its index.
func classicListing(prog []bpf.RawInstruction) string {
	var s string
	for i, ins := range prog {
		s += strconv.Itoa(i) + ": " + classicString(ins) + "\n"
	}
	return s
}
