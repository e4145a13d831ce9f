package vm_test

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// dnsFilter keeps IPv4 UDP datagrams to port 53 and drops the rest,
// reading the frame relative to its headers (skb.LoadLink), so that it
// gives the same verdict on a live socket and under the kernel's test run.
func dnsFilter() asm.Instructions {
	return append(skb.Prologue(), // r6 = r1, for the legacy loads
		skb.LoadLink(12, asm.Half), // r0 = EtherType
		asm.JNE.Imm(asm.R0, 0x0800, "drop"),
		skb.LoadLink(14+9, asm.Byte), // r0 = IPv4 protocol
		asm.JNE.Imm(asm.R0, 17, "drop"),
		skb.LoadLink(14+6, asm.Half), // r0 = flags, fragment offset
		asm.JSet.Imm(asm.R0, 0x1fff, "drop"),
		skb.LoadLink(14, asm.Byte), // r0 = version, IHL
		asm.And.Imm(asm.R0, 0x0f),
		asm.LSh.Imm(asm.R0, 2),
		asm.Mov.Reg(asm.R7, asm.R0),             // r7 = IPv4 header length
		skb.LoadLinkInd(asm.R7, 14+2, asm.Half), // r0 = UDP destination port
		asm.JNE.Imm(asm.R0, 53, "drop"),
		asm.Mov.Imm(asm.R0, -1), // keep the whole frame: skb.AcceptAll
		asm.Exit(),
		asm.Mov.Imm(asm.R0, 0).WithLabel("drop"),
		asm.Exit(),
	)
}

// frameHex decodes a frame written as hex, one header a line.
func frameHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// A filter written by hand is tested like any Go code, in `go test` and
// without root: the VM runs it on frames the test builds, as a packet
// socket would.
func Example() {
	v, err := vm.New(dnsFilter(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"DNS query", frameHex(`
			001122334455 66778899aabb 0800
			4500002400004000401100000a0000010a000002
			04d2003500100000
			0102030405060708`)},
		{"NTP", frameHex(`
			001122334455 66778899aabb 0800
			4500002400004000401100000a0000010a000002
			04d2007b00100000
			0102030405060708`)},
		{"ARP", frameHex(`
			ffffffffffff 66778899aabb 0806
			0001080006040001 66778899aabb 0a000001 000000000000 0a000002`)},
	} {
		keep, err := v.RunFrame(tc.frame, packet.LinkEthernet)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: keep %d of %d bytes\n", tc.name, min(int(keep), len(tc.frame)), len(tc.frame))
	}
	// Output:
	// DNS query: keep 50 of 50 bytes
	// NTP: keep 0 of 50 bytes
	// ARP: keep 0 of 42 bytes
}

// RunFrame and RunTest see the same frame as a live packet socket and the
// kernel's BPF_PROG_TEST_RUN do: skb->data at the link-layer header, or at
// the network header 14 bytes in.
func ExampleVM_RunTest() {
	// r0 = skb->len
	v, err := vm.New(asm.Instructions{skb.Len.Load(asm.R0, asm.R1), asm.Exit()}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	frame := make([]byte, 60)
	frame[12], frame[13] = 0x08, 0x00 // IPv4
	live, _ := v.RunFrame(frame, packet.LinkEthernet)
	test, _ := v.RunTest(frame, packet.LinkEthernet)
	fmt.Println("live:", live, "test run:", test)
	// Output:
	// live: 60 test run: 46
}

// RunMemory runs a program as the public conformance suites do: r1 points
// at a copy of the input and r2 holds its length.
func ExampleVM_RunMemory() {
	insns, err := asm.Parse(`
		r0 = 0
	loop:
		if r2 == 0x0 goto out
		r3 = *(u8 *)(r1 +0)
		r0 += r3
		r1 += 1
		r2 -= 1
		goto loop
	out:
		exit
	`)
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := vm.New(insns, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	sum, err := v.RunMemory([]byte{1, 2, 3, 4})
	fmt.Println(sum, err)
	// Output:
	// 10 <nil>
}

// New refuses what the VM cannot run, naming the instruction; a run that
// goes wrong stops with an *Error naming it too.
func ExampleError() {
	insns := asm.Instructions{
		asm.Mov.Imm(asm.R1, 0),
		asm.LoadMem(asm.R0, asm.R1, 0, asm.Word), // a NULL pointer
		asm.Exit(),
	}
	v, err := vm.New(insns, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = v.RunMemory(nil)
	fmt.Println(err)
	_, err = vm.New(asm.Instructions{asm.Call(asm.FnSkbStoreBytes), asm.Exit()}, nil)
	fmt.Println(err)
	// Output:
	// run program: instruction 1 (r0 = *(u32 *)(r1 +0)): invalid memory access: read of 4 bytes at 0x0: a NULL pointer
	// new vm: instruction 0 (call bpf_skb_store_bytes#9): not supported by the VM: call of bpf_skb_store_bytes#9, which socket filters may not call
}

// A filter that keeps state in a map is unit-tested without root too: the
// VM keeps the map, runs the map helpers on it as the kernel does, and the
// test reads it back. This one counts IPv4 frames by protocol in an array
// indexed by the protocol number and keeps the TCP ones.
func ExampleNewMap() {
	counts, err := vm.NewMap(&vm.MapSpec{Type: vm.Array, KeySize: 4, ValueSize: 8, MaxEntries: 256})
	if err != nil {
		fmt.Println(err)
		return
	}
	insns := append(skb.Prologue(),
		skb.LoadLink(12, asm.Half), // r0 = EtherType
		asm.JNE.Imm(asm.R0, 0x0800, "drop"),
		skb.LoadNet(9, asm.Byte), // r0 = IPv4 protocol
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.StoreMem(asm.R10, -4, asm.R0, asm.Word), // the key, on the stack
		asm.LoadMapPtr(asm.R1, "counts"),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.Call(asm.FnMapLookupElem), // r0 = &counts[protocol], or NULL
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AtomicAdd.Mem(asm.R0, 0, asm.R1, asm.DWord), // counts[protocol]++
		asm.JNE.Imm(asm.R7, 6, "drop"),
		asm.Mov.Imm(asm.R0, -1), // keep TCP
		asm.Exit(),
		asm.Mov.Imm(asm.R0, 0).WithLabel("drop"),
		asm.Exit(),
	)
	v, err := vm.New(insns, &vm.Options{Maps: map[string]*vm.Map{"counts": counts}})
	if err != nil {
		fmt.Println(err)
		return
	}
	frames := map[string][]byte{
		"UDP": frameHex(`001122334455 66778899aabb 0800 450000140000400040110000 0a000001 0a000002`),
		"TCP": frameHex(`001122334455 66778899aabb 0800 450000140000400040060000 0a000001 0a000002`),
		"ARP": frameHex(`ffffffffffff 66778899aabb 0806 0001080006040001 66778899aabb 0a000001 000000000000 0a000002`),
	}
	for _, name := range []string{"UDP", "TCP", "TCP", "ARP"} {
		keep, err := v.RunFrame(frames[name], packet.LinkEthernet)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: keep %v\n", name, keep != 0)
	}
	for _, proto := range []uint32{6, 17} {
		value, err := counts.Lookup(binary.LittleEndian.AppendUint32(nil, proto))
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("protocol %d: %d frames\n", proto, binary.LittleEndian.Uint64(value))
	}
	// Output:
	// UDP: keep false
	// TCP: keep true
	// TCP: keep true
	// ARP: keep false
	// protocol 6: 2 frames
	// protocol 17: 1 frames
}
