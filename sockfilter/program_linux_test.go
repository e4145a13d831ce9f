package sockfilter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// acceptAll keeps every frame whole; dropAll keeps none.
var (
	acceptAll = asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Exit()}
	dropAll   = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Exit()}
)

// udpPort53 keeps IPv4 UDP datagrams to port 53 and drops everything else.
// It reads the frame only with link-relative loads, so it gives the same
// verdict under Test as on a live socket.
var udpPort53 = append(skb.Prologue(),
	skb.LoadLink(12, asm.Half), // EtherType
	asm.JNE.Imm(asm.R0, 0x0800, "drop"),
	skb.LoadLink(14+9, asm.Byte), // IPv4 protocol
	asm.JNE.Imm(asm.R0, unix.IPPROTO_UDP, "drop"),
	skb.LoadLink(14+6, asm.Half), // flags and fragment offset
	asm.JSet.Imm(asm.R0, 0x1fff, "drop"),
	skb.LoadLink(14, asm.Byte), // version and IHL
	asm.And.Imm(asm.R0, 0x0f),
	asm.LSh.Imm(asm.R0, 2),
	asm.Mov.Reg(asm.R7, asm.R0),
	skb.LoadLinkInd(asm.R7, 14+2, asm.Half), // UDP destination port
	asm.JNE.Imm(asm.R0, 53, "drop"),
	asm.Mov.Imm(asm.R0, -1),
	asm.Exit(),
	asm.Mov.Imm(asm.R0, 0).WithLabel("drop"),
	asm.Exit(),
)

// udpFrame returns an Ethernet frame carrying an IPv4 UDP datagram to
// dstPort with the payload.
func udpFrame(dstPort uint16, payload string) []byte {
	f := []byte{
		0, 0, 0, 0, 0, 0, // destination MAC (lo's)
		0, 0, 0, 0, 0, 0, // source MAC
		0x08, 0x00, // EtherType IPv4
		0x45, 0x00, 0, 0, // version 4, IHL 5, TOS, total length (below)
		0x12, 0x34, 0x40, 0x00, // id, DF, fragment offset 0
		64, unix.IPPROTO_UDP, 0, 0, // TTL, protocol, checksum (unchecked)
		127, 0, 0, 1, // source 127.0.0.1
		127, 0, 0, 1, // destination 127.0.0.1
		0x30, 0x39, 0, 0, // source port 12345, destination port (below)
		0, 0, 0, 0, // UDP length (below), checksum 0
	}
	f = append(f, payload...)
	binary.BigEndian.PutUint16(f[16:], uint16(len(f)-14))
	binary.BigEndian.PutUint16(f[36:], dstPort)
	binary.BigEndian.PutUint16(f[38:], uint16(len(f)-34))
	return f
}

// mustLoad loads insns or fails t, and closes the program at cleanup.
func mustLoad(t testing.TB, insns asm.Instructions, opts *LoadOptions) *Program {
	t.Helper()
	p, err := Load(insns, opts)
	if err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestLoadAndTest(t *testing.T) {
	testutil.RequirePrivileged(t)
	arp := udpFrame(53, "x")
	arp[12], arp[13] = 0x08, 0x06
	frag := udpFrame(53, "x")
	frag[14+7] = 0x08 // fragment offset 8: no UDP header here
	// IHL 6: a 4-byte option moves the UDP header to offset 38, and its
	// destination port to 40; bytes 36-37 (port 54) are now the option.
	ipOpts := udpFrame(54, "xxxxxxxx")
	ipOpts[14] = 0x46
	ipOpts[40], ipOpts[41] = 0, 53

	tests := []struct {
		name  string
		insns asm.Instructions
		frame []byte
		want  uint32
	}{
		{"accept all", acceptAll, udpFrame(9, "hello"), 0xffffffff},
		{"drop all", dropAll, udpFrame(9, "hello"), 0},
		{"udp 53", udpPort53, udpFrame(53, "query"), 0xffffffff},
		{"udp 54", udpPort53, udpFrame(54, "query"), 0},
		{"arp", udpPort53, arp, 0},
		{"fragment", udpPort53, frag, 0},
		{"ip options", udpPort53, ipOpts, 0xffffffff},
		{"truncated UDP header", udpPort53, udpFrame(53, "")[:36], 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustLoad(t, tt.insns, nil)
			got, err := p.Test(tt.frame, packet.LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Test = %#x, want %#x", got, tt.want)
			}
		})
	}
}

func TestTestShortFrame(t *testing.T) {
	testutil.RequirePrivileged(t)
	p := mustLoad(t, acceptAll, nil)
	for _, n := range []int{0, 1, 13, 14} {
		if _, err := p.Test(make([]byte, n), packet.LinkEthernet); err == nil || !strings.Contains(err.Error(), "needs an Ethernet header (14 bytes) and at least one byte more") {
			t.Errorf("Test(%d bytes) error = %v", n, err)
		}
	}
	// The kernel pulls the whole IPv4 or IPv6 header; Test says so
	// rather than pass on EINVAL. Each shortest accepted frame passes.
	for _, tt := range []struct {
		etherType uint16
		min       int
	}{{0x0800, 34}, {0x86dd, 54}, {0x0806, 15}, {0x88cc, 15}} {
		for _, n := range []int{tt.min - 1, tt.min} {
			f := make([]byte, n)
			binary.BigEndian.PutUint16(f[12:], tt.etherType)
			_, err := p.Test(f, packet.LinkEthernet)
			switch {
			case n < tt.min && (err == nil || !strings.Contains(err.Error(), "the kernel needs")):
				t.Errorf("EtherType %#04x, %d bytes: error %v", tt.etherType, n, err)
			case n == tt.min && err != nil:
				t.Errorf("EtherType %#04x, %d bytes: %v", tt.etherType, n, err)
			}
		}
	}
}

// TestLinkRelativeLoads checks which frame bytes each kind of load reads
// under Test: link-relative loads read the frame from its first byte, as
// on a live socket, while plain asm.LoadAbs starts after the Ethernet
// header.
func TestLinkRelativeLoads(t *testing.T) {
	testutil.RequirePrivileged(t)
	frame := make([]byte, 64)
	for i := range frame {
		frame[i] = byte(0xa0 + i)
	}
	frame[12], frame[13] = 0x08, 0x00 // keep eth_type_trans happy
	be := func(off, n int) uint32 {
		var v uint32
		for _, b := range frame[off : off+n] {
			v = v<<8 | uint32(b)
		}
		return v
	}
	ret := func(insns ...asm.Instruction) asm.Instructions {
		return append(append(skb.Prologue(), insns...), asm.Exit())
	}
	stackLoad := func(off int32, start skb.HeaderStart) asm.Instructions {
		p := append(skb.Prologue(), skb.LoadBytesRelative(asm.R6, off, -8, 4, start)...)
		return append(p,
			asm.JNE.Imm(asm.R0, 0, "short"),
			asm.LoadMem(asm.R0, asm.R10, -8, asm.Word),
			asm.ToBE(asm.R0, 32), // to host order, as skb.LoadLink converts
			asm.Exit(),
			asm.Mov.Imm(asm.R0, 0xdead).WithLabel("short"),
			asm.Exit(),
		)
	}
	tests := []struct {
		name  string
		insns asm.Instructions
		want  uint32
	}{
		{"skb.LoadLink byte 0", ret(skb.LoadLink(0, asm.Byte)), be(0, 1)},
		{"skb.LoadLink half 6", ret(skb.LoadLink(6, asm.Half)), be(6, 2)},
		{"skb.LoadLink word 20", ret(skb.LoadLink(20, asm.Word)), be(20, 4)},
		{"skb.LoadLinkInd", ret(asm.Mov.Imm(asm.R7, 30), skb.LoadLinkInd(asm.R7, 3, asm.Word)), be(33, 4)},
		{"skb.LoadNet byte 0", ret(skb.LoadNet(0, asm.Byte)), be(14, 1)},
		{"skb.LoadNetInd", ret(asm.Mov.Imm(asm.R7, 10), skb.LoadNetInd(asm.R7, 2, asm.Half)), be(26, 2)},
		{"LoadAbs starts at the network header", ret(asm.LoadAbs(0, asm.Byte)), be(14, 1)},
		{"skb.LoadLink past the end", ret(skb.LoadLink(64, asm.Byte)), 0},
		{"load_bytes_relative mac", stackLoad(2, skb.HeaderMAC), be(2, 4)},
		{"load_bytes_relative net", stackLoad(2, skb.HeaderNet), be(16, 4)},
		{"load_bytes_relative past the end", stackLoad(62, skb.HeaderMAC), 0xdead},
		{"skb->len excludes the Ethernet header", ret(skb.Len.Load(asm.R0, asm.R6)), 64 - 14},
		{"skb->protocol", ret(skb.Protocol.Load(asm.R0, asm.R6)), uint32(binary.NativeEndian.Uint16([]byte{0x08, 0x00}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustLoad(t, tt.insns, nil)
			got, err := p.Test(frame, packet.LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Test = %#x, want %#x", got, tt.want)
			}
		})
	}
}

func TestInfo(t *testing.T) {
	testutil.RequirePrivileged(t)
	before := time.Now()
	p := mustLoad(t, udpPort53, &LoadOptions{Name: "udp-53 filter!"})
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "udp_53_filter_" || p.Name() != info.Name {
		t.Errorf("name %q (Name() %q), want udp_53_filter_", info.Name, p.Name())
	}
	if info.XlatedInsns < len(udpPort53) {
		t.Errorf("XlatedInsns %d < %d instructions loaded", info.XlatedInsns, len(udpPort53))
	}
	if info.VerifiedInsns == 0 || !info.GPLCompatible || info.CreatedByUID != uint32(os.Geteuid()) {
		t.Errorf("verified %d, gpl %v, uid %d", info.VerifiedInsns, info.GPLCompatible, info.CreatedByUID)
	}
	if d := info.LoadTime.Sub(before); d < -time.Second || d > time.Minute {
		t.Errorf("LoadTime %v, loaded at about %v", info.LoadTime, before)
	}
	if jit, _ := os.ReadFile("/proc/sys/net/core/bpf_jit_enable"); strings.TrimSpace(string(jit)) != "0" && info.JITSize == 0 {
		t.Errorf("JITSize 0 with the JIT enabled")
	}

	// /proc/self/fdinfo is the kernel's other account of the program.
	fdinfo, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(p.FD()))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"prog_id":        strconv.FormatUint(uint64(info.ID), 10),
		"prog_tag":       info.Tag.String(),
		"verified_insns": strconv.Itoa(info.VerifiedInsns),
	}
	for line := range strings.SplitSeq(string(fdinfo), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if w, ok := want[k]; ok {
			if v = strings.TrimSpace(v); v != w {
				t.Errorf("fdinfo %s = %s, Info says %s", k, v, w)
			}
			delete(want, k)
		}
	}
	if len(want) != 0 {
		t.Errorf("fdinfo lacks %v:\n%s", want, fdinfo)
	}

	// The same instructions give the same tag.
	q := mustLoad(t, udpPort53, nil)
	qinfo, err := q.Info()
	if err != nil {
		t.Fatal(err)
	}
	if qinfo.Tag != info.Tag || qinfo.ID == info.ID {
		t.Errorf("second load: tag %v id %d, first tag %v id %d", qinfo.Tag, qinfo.ID, info.Tag, info.ID)
	}
}

func TestInstructionsCopy(t *testing.T) {
	testutil.RequirePrivileged(t)
	insns := append(asm.Instructions(nil), acceptAll...)
	p := mustLoad(t, insns, nil)
	insns[0] = asm.Mov.Imm(asm.R0, 1)
	got := p.Instructions()
	if len(got) != 2 || got[0] != acceptAll[0] {
		t.Fatalf("Instructions() = %v, want %v", got, acceptAll)
	}
	got[0] = asm.Mov.Imm(asm.R0, 2)
	if p.Instructions()[0] != acceptAll[0] {
		t.Error("Instructions() shares memory with the program")
	}
}

func TestClose(t *testing.T) {
	testutil.RequirePrivileged(t)
	p := mustLoad(t, acceptAll, nil)
	fd := p.FD()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = p.Close() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Close #%d: %v", i, err)
		}
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
	if p.FD() != -1 {
		t.Errorf("FD() = %d after Close", p.FD())
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Errorf("fd %d still open after Close (%v)", fd, err)
	}
	if _, err := p.Test(udpFrame(53, ""), packet.LinkEthernet); !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("Test after Close: %v", err)
	}
	if _, err := p.Info(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Info after Close: %v", err)
	}
}

// TestLoadCloseNoLeak loads and closes 2,000 programs, some refused, and
// checks that no file descriptor stays open.
func TestLoadCloseNoLeak(t *testing.T) {
	testutil.RequirePrivileged(t)
	countFDs := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := countFDs()
	for i := range 2000 {
		insns := acceptAll
		if i%100 == 0 {
			insns = asm.Instructions{asm.Exit()} // refused: R0 !read_ok
		}
		p, err := Load(insns, nil)
		if i%100 == 0 {
			if err == nil {
				p.Close()
				t.Fatal("refused program loaded")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after := countFDs(); after != before {
		t.Errorf("%d fds open before, %d after 2,000 Load/Close cycles", before, after)
	}
}

func TestLoadBadInput(t *testing.T) {
	// None of these reaches the kernel: no privileges needed.
	tests := []struct {
		name  string
		insns asm.Instructions
		opts  *LoadOptions
		want  string
		is    error
	}{
		{"empty", nil, nil, "load program: no instructions", nil},
		{"missing label", asm.Instructions{asm.Goto("nowhere"), asm.Exit()}, nil, "nowhere", asm.ErrMissingLabel},
		{"NUL in license", acceptAll, &LoadOptions{License: "GPL\x00x"}, "contains a NUL byte", nil},
		{"unknown log level", acceptAll, &LoadOptions{LogLevel: 8}, "unknown log level bits 0x8", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load(tt.insns, tt.opts)
			if err == nil {
				p.Close()
				t.Fatal("Load succeeded")
			}
			if !strings.HasPrefix(err.Error(), "load program: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q does not match %v", err, tt.is)
			}
		})
	}
}

func TestSanitizeName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"udp53", "udp53"},
		{"a.b_C9", "a.b_C9"},
		{"udp-53 filter!", "udp_53_filter_"},
		{"0123456789abcdefXYZ", "0123456789abcde"},
		{"héllo", "h__llo"},
	} {
		if got := sanitizeName(tt.in); got != tt.want {
			t.Errorf("sanitizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLicense(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, tt := range []struct {
		license string
		gpl     bool
	}{
		{"", true},
		{"Dual BSD/GPL", true},
		{"Proprietary", false},
	} {
		t.Run(tt.license, func(t *testing.T) {
			p := mustLoad(t, acceptAll, &LoadOptions{License: tt.license})
			info, err := p.Info()
			if err != nil {
				t.Fatal(err)
			}
			if info.GPLCompatible != tt.gpl {
				t.Errorf("GPLCompatible = %v, want %v", info.GPLCompatible, tt.gpl)
			}
		})
	}
}

// TestTestPktType checks what the package doc says of skb->pkt_type under
// Test: the kernel derives it from the destination MAC address as lo, whose
// address is all zeros, would receive the frame.
func TestTestPktType(t *testing.T) {
	testutil.RequirePrivileged(t)
	p := mustLoad(t, asm.Instructions{skb.PktType.Load(asm.R0, asm.R1), asm.Exit()}, nil)
	for _, tt := range []struct {
		name string
		dst  []byte
		want uint32
	}{
		{"lo's address", []byte{0, 0, 0, 0, 0, 0}, unix.PACKET_HOST},
		// lo's broadcast address is all zeros too, so eth_type_trans
		// takes ff:ff:ff:ff:ff:ff for one more multicast address.
		{"broadcast", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, unix.PACKET_MULTICAST},
		{"multicast", []byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}, unix.PACKET_MULTICAST},
		{"other unicast", []byte{0x02, 0, 0, 0, 0, 1}, unix.PACKET_OTHERHOST},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := udpFrame(53, "x")
			copy(f, tt.dst)
			got, err := p.Test(f, packet.LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("pkt_type %d, want %d", got, tt.want)
			}
		})
	}
}

func TestTestLink(t *testing.T) {
	testutil.RequirePrivileged(t)
	// Accept the frame when the IPv4 protocol byte, read relative to the
	// network header, is UDP; return the version byte + 1000 so the test
	// sees what was read.
	insns := append(skb.Prologue(),
		skb.LoadNet(9, asm.Byte),
		asm.JNE.Imm(asm.R0, 17, "drop"),
		skb.LoadNet(0, asm.Byte),
		asm.Add.Imm(asm.R0, 1000),
		asm.Exit(),
		asm.Mov.Imm(asm.R0, 0).WithLabel("drop"),
		asm.Exit(),
	)
	prog, err := Load(insns, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })

	ip := make([]byte, 28)
	ip[0], ip[9] = 0x45, 17
	binary.BigEndian.PutUint16(ip[2:], 28)
	eth := append(make([]byte, 12), 0x08, 0x00)
	eth = append(eth, ip...)
	ip6 := make([]byte, 48)
	ip6[0] = 0x60

	tests := []struct {
		name  string
		frame []byte
		link  packet.LinkType
		want  uint32
		err   bool
	}{
		{"raw IPv4 UDP", ip, packet.LinkRawIP, 1000 + 0x45, false},
		{"Ethernet IPv4 UDP", eth, packet.LinkEthernet, 1000 + 0x45, false},
		{"raw IPv6", ip6, packet.LinkRawIP, 0, false},
		{"raw empty", nil, packet.LinkRawIP, 0, true},
		{"raw version 5", []byte{0x50, 1, 2, 3}, packet.LinkRawIP, 0, true},
		{"unknown link", eth, packet.LinkType(9), 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]byte(nil), tc.frame...)
			got, err := prog.Test(tc.frame, tc.link)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if got != tc.want {
				t.Errorf("verdict %d, want %d", got, tc.want)
			}
			if !bytes.Equal(before, tc.frame) {
				t.Error("frame modified")
			}
		})
	}
}

// TestZeroProgram checks that a Program not made by Load holds nothing:
// its methods fail with ErrClosed and never touch file descriptor 0.
func TestZeroProgram(t *testing.T) {
	var st0 unix.Stat_t
	if err := unix.Fstat(0, &st0); err != nil {
		t.Skipf("no standard input to watch: %v", err)
	}
	var p Program
	if fd := p.FD(); fd != -1 {
		t.Errorf("FD() = %d, want -1", fd)
	}
	if _, err := p.Test(make([]byte, 64), packet.LinkEthernet); !errors.Is(err, ErrClosed) {
		t.Errorf("Test: %v, want ErrClosed", err)
	}
	if _, err := p.Info(); !errors.Is(err, ErrClosed) {
		t.Errorf("Info: %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if testutil.Privileged() {
		if c, err := Listen("lo", &Program{}, nil); err == nil {
			c.Close()
			t.Error("Listen with the zero Program succeeded")
		}
	}
	var st1 unix.Stat_t
	if err := unix.Fstat(0, &st1); err != nil || st1.Ino != st0.Ino || st1.Dev != st0.Dev {
		t.Errorf("standard input changed: %v", err)
	}
}
