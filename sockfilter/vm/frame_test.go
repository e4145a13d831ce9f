package vm_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// udpFrame is an Ethernet frame of 50 bytes: IPv4 from 10.0.0.1 to
// 10.0.0.2, UDP from port 1234 to port 53, 8 bytes of payload.
var udpFrame = mustHex(
	"001122334455" + "66778899aabb" + "0800" + // Ethernet: dst, src, IPv4
		"45000024" + "00004000" + "4011" + "0000" + "0a000001" + "0a000002" + // IPv4, UDP
		"04d20035" + "00100000" + // UDP 1234 → 53
		"0102030405060708") // payload

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

type frameCase struct {
	name       string
	src        string
	live, test uint32 // r0 under RunFrame and RunTest
}

func runFrames(t *testing.T, frame []byte, link packet.LinkType, cases []frameCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVM(t, tc.src, nil)
			if got, err := v.RunFrame(frame, link); err != nil || got != tc.live {
				t.Errorf("RunFrame = %#x, %v; want %#x", got, err, tc.live)
			}
			if got, err := v.RunTest(frame, link); err != nil || got != tc.test {
				t.Errorf("RunTest = %#x, %v; want %#x", got, err, tc.test)
			}
		})
	}
}

// pkt is a program that starts with r6 = r1 for the legacy loads.
func pkt(lines ...string) string { return prog(append([]string{"r6 = r1"}, lines...)...) }

func TestLegacyLoads(t *testing.T) {
	runFrames(t, udpFrame, packet.LinkEthernet, []frameCase{
		// skb->data is the link-layer header live, the network header in
		// the test run.
		{"abs u16", pkt("r0 = *(u16 *)skb[12]"), 0x0800, 0x0a00},
		{"abs u8", pkt("r0 = *(u8 *)skb[0]"), 0x00, 0x45},
		{"abs u32", pkt("r0 = *(u32 *)skb[26]"), 0x0a000001, 0x00000102},
		// SKF_LL_OFF and SKF_NET_OFF find the headers in both.
		{"link-layer header", pkt("r0 = *(u16 *)skb[-2097140]"), 0x0800, 0x0800},
		{"network header", pkt("r0 = *(u8 *)skb[-1048567]"), 17, 17},
		{"network header u32", pkt("r0 = *(u32 *)skb[-1048560]"), 0x0a000002, 0x0a000002},
		{"past the end returns 0", pkt("r0 = *(u8 *)skb[50]", "r0 = 7"), 0, 0},
		{"the last byte", pkt("r0 = *(u8 *)skb[-2097103]"), 8, 8},
		{"u32 across the end", pkt("r0 = *(u32 *)skb[-2097105]", "r0 = 7"), 0, 0},
		{"the last u32", pkt("r0 = *(u32 *)skb[-2097106]", "r0 = 7"), 7, 7},
		{"below SKF_LL_OFF", pkt("r0 = *(u8 *)skb[-2097153]", "r0 = 7"), 0, 0},
		{"negative, above SKF_NET_OFF", pkt("r0 = *(u8 *)skb[-1]", "r0 = 7"), 0, 0},
		{"ind", pkt("r7 = 14", "r0 = *(u8 *)skb[r7 + 9]"), 17, 0x35},
		{"ind from the network header", pkt("r7 = 20", "r0 = *(u16 *)skb[r7 + -1048574]"), 0x0035, 0x0035},
		{"ind wraps to 32 bits", pkt("r7 = 0x100000000", "r0 = *(u8 *)skb[r7 + 9]"), 0x99, 0x11},
		{"ind below SKF_LL_OFF", pkt("r7 = -1", "r0 = *(u8 *)skb[r7 + -2097152]", "r0 = 7"), 0, 0},
		{"clobbers nothing it does not write", pkt("r7 = 5", "r0 = *(u8 *)skb[0]", "r0 = r7"), 5, 5},
	})
}

func TestLegacyLoadsRawIP(t *testing.T) {
	raw := udpFrame[14:]
	runFrames(t, raw, packet.LinkRawIP, []frameCase{
		{"skb->data is the network header", pkt("r0 = *(u8 *)skb[9]"), 17, 17},
		// Live, the link-layer header is the network header; the test run
		// sees the Ethernet header Program.Test puts in front.
		{"link-layer header", pkt("r0 = *(u8 *)skb[-2097143]"), 17, 0},
		{"network header", pkt("r0 = *(u32 *)skb[-1048564]"), 0x0a000001, 0x0a000001},
		{"protocol", prog("r0 = *(u32 *)(r1 +16)"), 0x0008, 0x0008},
	})
}

func TestLegacyLoadErrors(t *testing.T) {
	v := newVM(t, prog("r6 = 0", "r0 = *(u8 *)skb[0]"), nil)
	_, err := v.RunFrame(udpFrame, packet.LinkEthernet)
	var e *vm.Error
	if !errors.As(err, &e) || e.Index != 1 || !errors.Is(err, vm.ErrCall) || !strings.Contains(err.Error(), "r6") {
		t.Errorf("legacy load with r6 = 0: %v", err)
	}
}

func TestContext(t *testing.T) {
	runFrames(t, udpFrame, packet.LinkEthernet, []frameCase{
		{"len", prog("r0 = *(u32 *)(r1 +0)"), 50, 36},
		{"pkt_type", prog("r0 = *(u32 *)(r1 +4)"), 0, 3}, // PACKET_OTHERHOST on lo
		{"protocol is in network byte order", prog("r0 = *(u32 *)(r1 +16)"), 0x0008, 0x0008},
		{"protocol's low byte", prog("r0 = *(u8 *)(r1 +16)"), 0x08, 0x08},
		{"protocol's high byte", prog("r0 = *(u8 *)(r1 +17)"), 0x00, 0x00},
		{"a u16 as wide as the field gets it whole", prog("r0 = *(u16 *)(r1 +18)"), 0x0008, 0x0008},
		{"len's high half", prog("r0 = *(u16 *)(r1 +2)"), 0, 0},
		{"ifindex", prog("r0 = *(u32 *)(r1 +40)"), 0, 1},
		{"cb is writable and starts zeroed", prog("r0 = *(u32 *)(r1 +52)", "*(u32 *)(r1 +48) = 7", "r2 = *(u64 *)(r1 +48)", "r0 += r2"), 7, 7},
		{"sk", prog("r0 = *(u64 *)(r1 +168)", "if r0 == 0x0 goto out", "r0 = *(u32 *)(r0 +4)", "out:"), 0, 2},
		{"sk addresses", prog("r0 = *(u64 *)(r1 +168)", "if r0 == 0x0 goto out", "r0 = *(u32 *)(r0 +52)", "out:"), 0, 0x0200000a},
		{"sk state and rx_queue_mapping", prog("r0 = *(u64 *)(r1 +168)", "if r0 == 0x0 goto out", "r1 = *(u8 *)(r0 +76)", "r0 = *(u32 *)(r0 +72)", "r0 <<= 8", "r0 |= r1", "out:"), 0, 0x7ff},
		{"socket uid", prog("call bpf_get_socket_uid"), 65534, 0},
	})
	lo := append(make([]byte, 6), udpFrame[6:]...)
	runFrames(t, lo, packet.LinkEthernet, []frameCase{
		{"pkt_type of lo's address", prog("r0 = *(u32 *)(r1 +4)"), 0, 0},
	})
	bcast := append(bytes.Repeat([]byte{0xff}, 6), udpFrame[6:]...)
	runFrames(t, bcast, packet.LinkEthernet, []frameCase{
		{"pkt_type of broadcast", prog("r0 = *(u32 *)(r1 +4)"), 0, 2}, // lo's broadcast address is all zeros
	})
}

// TestContextInfo checks what RunFrameInfo takes from packet.Info.
func TestContextInfo(t *testing.T) {
	v := newVM(t, `
		r2 = *(u32 *)(r1 +4)
		r0 = r2
		r2 = *(u32 *)(r1 +36)
		r0 <<= 8
		r0 |= r2
		r2 = *(u32 *)(r1 +40)
		r0 <<= 8
		r0 |= r2
		r2 = *(u32 *)(r1 +20)
		r0 <<= 4
		r0 |= r2
		r2 = *(u32 *)(r1 +24)
		r0 <<= 16
		r0 |= r2
		r2 = *(u16 *)(r1 +28)
		r0 <<= 16
		r0 |= r2
		exit
	`, nil)
	for _, tc := range []struct {
		info packet.Info
		want uint64
	}{
		{packet.Info{}, 0},
		{packet.Info{Ifindex: 3, Direction: packet.DirectionHost}, 0x00_03_03_0_0000_0000},
		{packet.Info{Ifindex: 3, Direction: packet.DirectionOutgoing}, 0x04_00_03_0_0000_0000},
		{packet.Info{Ifindex: 2, Direction: packet.DirectionMulticast, HasVLAN: true, VLANTCI: 0x2064, VLANTPID: 0x8100}, 0x02_02_02_1_2064_0081},
	} {
		got, err := v.RunFrameInfo(udpFrame, packet.LinkEthernet, &tc.info)
		// r0 is truncated to 32 bits: compare the low half.
		if err != nil || got != uint32(tc.want) {
			t.Errorf("RunFrameInfo(%+v) = %#x, %v; want %#x", tc.info, got, err, uint32(tc.want))
		}
	}
	// Length longer than the frame: skb->len is the wire length, loads
	// past the bytes present fail.
	v = newVM(t, pkt("r7 = *(u32 *)(r6 +0)", "r0 = *(u8 *)skb[60]", "r0 = r7"), nil)
	if got, err := v.RunFrameInfo(udpFrame, packet.LinkEthernet, &packet.Info{Length: 1500}); got != 0 || err != nil {
		t.Errorf("load past the captured bytes: %#x, %v; want 0", got, err)
	}
	v = newVM(t, prog("r0 = *(u32 *)(r1 +0)"), nil)
	if got, _ := v.RunFrameInfo(udpFrame, packet.LinkEthernet, &packet.Info{Length: 1500}); got != 1500 {
		t.Errorf("skb->len of a cut frame = %d, want 1500", got)
	}
}

func TestContextErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
	}{
		{"write len", prog("*(u32 *)(r1 +0) = 1", "r0 = 0")},
		{"u64 of len", prog("r0 = *(u64 *)(r1 +0)")},
		{"tc_classid", prog("r0 = *(u32 *)(r1 +72)")},
		{"data", prog("r0 = *(u32 *)(r1 +76)")},
		{"past the end", prog("r0 = *(u32 *)(r1 +192)")},
		{"misaligned", prog("r0 = *(u32 *)(r1 +2)")},
		{"atomic on cb", prog("r2 = 1", "lock *(u32 *)(r1 +48) += r2", "r0 = 0")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newVM(t, tc.src, nil).RunFrame(udpFrame, packet.LinkEthernet)
			if !errors.Is(err, vm.ErrMemory) {
				t.Errorf("RunFrame: %v, want ErrMemory", err)
			}
		})
	}
}

// TestSkbLoadBytes checks bpf_skb_load_bytes and
// bpf_skb_load_bytes_relative: a copy to the stack, or -EFAULT and a
// cleared buffer.
func TestSkbLoadBytes(t *testing.T) {
	const efault = 0xfffffff2 // -EFAULT, truncated to 32 bits
	call := func(off, n int, rel string) string {
		s := "r6 = r1\n*(u64 *)(r10 -8) = -1\nr1 = r6\nr2 = " + strconv.Itoa(off) + "\nr3 = r10\nr3 += -8\nr4 = " + strconv.Itoa(n) + "\n"
		if rel == "" {
			s += "call bpf_skb_load_bytes\n"
		} else {
			s += "r5 = " + rel + "\ncall bpf_skb_load_bytes_relative\n"
		}
		// The buffer's first u32 on success; -EFAULT if the helper
		// failed and cleared n bytes, else 0x1234.
		return s + "r1 = *(u32 *)(r10 -8)\nif r0 == 0x0 goto ok\nr1 <<= " + strconv.Itoa(64-8*n) + "\nif r1 == 0x0 goto done\nr0 = 0x1234\ngoto done\nok:\nr0 = r1\ndone:\nexit\n"
	}
	runFrames(t, udpFrame, packet.LinkEthernet, []frameCase{
		{"from skb->data", call(26, 4, ""), 0x0100000a, 0x02010000},
		{"too short clears the buffer", call(34, 4, ""), 0x3500d204, efault},
		{"past the end", call(60, 4, ""), efault, efault},
		{"from the link-layer header", call(12, 2, "0"), 0xffff0008, 0xffff0008},
		{"from the network header", call(12, 4, "1"), 0x0100000a, 0x0100000a},
		{"offset over 0xffff", call(0x10000, 4, "1"), efault, efault},
		{"unknown header", call(0, 4, "2"), efault, efault},
	})
	v := newVM(t, prog("r2 = 0", "r3 = 0", "r4 = 4", "call bpf_skb_load_bytes"), nil)
	if _, err := v.RunFrame(udpFrame, packet.LinkEthernet); !errors.Is(err, vm.ErrMemory) {
		t.Errorf("bpf_skb_load_bytes to NULL: %v, want ErrMemory", err)
	}
}

func TestHelpers(t *testing.T) {
	var n uint32
	opts := &vm.Options{
		Clock: func() uint64 { return 123456789 },
		Rand:  func() uint32 { n++; return n },
	}
	for _, tc := range []struct {
		src  string
		want uint64
	}{
		{prog("call bpf_ktime_get_ns"), 123456789},
		{prog("call bpf_ktime_get_boot_ns"), 123456789},
		{prog("call bpf_ktime_get_coarse_ns"), 123456789},
		{prog("call bpf_get_prandom_u32", "r6 = r0", "call bpf_get_prandom_u32", "r0 <<= 8", "r0 |= r6"), 0x0201},
		{prog("call bpf_get_smp_processor_id"), 0},
		{prog("call bpf_get_numa_node_id"), 0},
	} {
		n = 0
		if got, err := newVM(t, tc.src, opts).RunMemory(nil); err != nil || got != tc.want {
			t.Errorf("%s= %#x, %v; want %#x", tc.src, got, err, tc.want)
		}
	}
	// The test run's socket cookie is not zero and does not change in a
	// run; a live packet socket's frames have no socket.
	v := newVM(t, prog("r6 = r1", "call bpf_get_socket_cookie", "r7 = r0", "r1 = r6", "call bpf_get_socket_cookie", "r0 -= r7", "if r7 != 0x0 goto out", "r0 = 1", "out:"), nil)
	if got, err := v.RunTest(udpFrame, packet.LinkEthernet); got != 0 || err != nil {
		t.Errorf("test run socket cookie: %#x, %v; want two equal non-zero cookies", got, err)
	}
	if got, err := v.RunFrame(udpFrame, packet.LinkEthernet); got != 1 || err != nil {
		t.Errorf("live socket cookie: %#x, %v; want 0", got, err)
	}
}

// TestTracePrintk checks bpf_trace_printk's formatting and that the text
// goes to Options.Trace.
func TestTracePrintk(t *testing.T) {
	// printk stores the format, given as 8-byte little-endian chunks, on the
	// stack and calls bpf_trace_printk with args.
	printk := func(format string, args ...string) string {
		b := []byte(format + "\x00")
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
		s := "r6 = r1\n"
		for i := 0; i < len(b); i += 8 {
			s += "r1 = 0x" + hex.EncodeToString(reverse(b[i:i+8])) + "\n*(u64 *)(r10 -" + strconv.Itoa(len(b)-i) + ") = r1\n"
		}
		s += "r1 = r10\nr1 += -" + strconv.Itoa(len(b)) + "\nr2 = " + strconv.Itoa(len(format)+1) + "\n"
		for i, a := range args {
			s += "r" + strconv.Itoa(3+i) + " = " + a + "\n"
		}
		return s + "call bpf_trace_printk\nexit\n"
	}
	for _, tc := range []struct {
		src  string
		want string
	}{
		{printk("hello\n"), "hello\n"},
		{printk("%d %u %x", "-5", "-5", "255"), "-5 4294967291 ff"},
		{printk("%lld %llx %ld", "-5", "-1", "7"), "-5 ffffffffffffffff 7"},
		{printk("[%5d|%-4d|%04x]", "42", "7", "10"), "[   42|7   |000a]"},
		{printk("%c%c%%", "104", "105"), "hi%"},
		{printk("%pI4 %pi4", "r1", "r1"), "37.112.73.52 037.112.073.052"}, // the format's first bytes
	} {
		var out bytes.Buffer
		v := newVM(t, tc.src, &vm.Options{Trace: &out})
		got, err := v.RunFrame(udpFrame, packet.LinkEthernet)
		if err != nil || out.String() != tc.want || got != uint32(len(tc.want)) {
			t.Errorf("printk wrote %q, returned %d, %v; want %q\n%s", out.String(), got, err, tc.want, tc.src)
		}
	}
	for _, src := range []string{printk("%d %d %d %d", "1", "2", "3"), printk("%q", "1"), printk("%pB", "1")} {
		var out bytes.Buffer
		got, err := newVM(t, src, &vm.Options{Trace: &out}).RunFrame(udpFrame, packet.LinkEthernet)
		if err != nil || got != 0xffffffea || out.Len() != 0 {
			t.Errorf("bad format: printk returned %#x, %v, wrote %q; want -EINVAL", got, err, out.String())
		}
	}
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

// TestCustomHelpers checks Options.Helpers: a helper that hands the
// program memory of its own, here a bpf_map_lookup_elem of the helper's
// in place of the VM's, and reads a map handle LD_IMM64 made.
func TestCustomHelpers(t *testing.T) {
	value := make([]byte, 8)
	lookup := func(e *vm.Env, r1, r2, r3, r4, r5 uint64) (uint64, error) {
		src, fd, ok := e.Object(r1)
		if !ok || src != asm.PseudoMapFD || fd != 5 {
			return 0, errors.New("not map 5")
		}
		key, err := e.Memory(r2, 4, false)
		if err != nil {
			return 0, err
		}
		if key[0] != 1 {
			return 0, nil // NULL: not found
		}
		return e.Expose(value, true)
	}
	insns := asm.Instructions{
		asm.StoreImm(asm.R10, -4, 1, asm.Word),
		asm.LoadMapFD(asm.R1, 5),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.Call(asm.FnMapLookupElem),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AtomicAdd.Mem(asm.R0, 0, asm.R1, asm.DWord),
		asm.LoadMem(asm.R0, asm.R0, 0, asm.DWord),
		asm.Exit().WithLabel("out"),
	}
	v, err := vm.New(insns, &vm.Options{Helpers: map[asm.HelperFunc]vm.Helper{asm.FnMapLookupElem: lookup}})
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 3; want++ {
		if got, err := v.RunMemory(nil); got != want || err != nil {
			t.Errorf("run %d: %d, %v", want, got, err)
		}
	}
	// The VM's own bpf_map_lookup_elem knows only the maps of
	// Options.Maps, not a map fd.
	v, err = vm.New(insns, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.RunMemory(nil); !errors.Is(err, vm.ErrCall) || !strings.Contains(err.Error(), "takes a map in r1") {
		t.Errorf("the VM's lookup of a map fd: %v, want ErrCall", err)
	}
	failing := map[asm.HelperFunc]vm.Helper{asm.FnMapLookupElem: func(*vm.Env, uint64, uint64, uint64, uint64, uint64) (uint64, error) {
		return 0, errors.New("boom")
	}}
	v, _ = vm.New(insns, &vm.Options{Helpers: failing})
	_, err = v.RunMemory(nil)
	var e *vm.Error
	if !errors.As(err, &e) || e.Index != 4 || !errors.Is(err, vm.ErrCall) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("failing helper: %v", err)
	}
}
