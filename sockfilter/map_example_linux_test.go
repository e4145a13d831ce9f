package sockfilter_test

import (
	"encoding/binary"
	"fmt"
	"log"
	"os"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// Count frames by EtherType in a hash map that the program updates and
// user space reads. (Needs root: not run by go test.)
func ExampleNewMap() {
	counts, err := sockfilter.NewMap(&sockfilter.MapSpec{
		Type: sockfilter.Hash, Name: "by_ethertype", KeySize: 4, ValueSize: 8, MaxEntries: 64,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer counts.Close()

	// key = EtherType; if counts[key] exists, add 1, else set it to 1.
	insns := append(skb.Prologue(),
		skb.LoadLink(12, asm.Half),
		asm.StoreMem(asm.R10, -4, asm.R0, asm.Word),
		asm.LoadMapPtr(asm.R1, "counts"),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.Call(asm.FnMapLookupElem),
		asm.JEq.Imm(asm.R0, 0, "new"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AtomicAdd.Mem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Goto("out"),
		asm.StoreImm(asm.R10, -16, 1, asm.DWord).WithLabel("new"),
		asm.LoadMapPtr(asm.R1, "counts"),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, -16),
		asm.Mov.Imm(asm.R4, int32(sockfilter.UpdateNoExist)),
		asm.Call(asm.FnMapUpdateElem),
		asm.Mov.Imm(asm.R0, 0).WithLabel("out"), // keep nothing: the map has it all
		asm.Exit(),
	)
	prog, err := sockfilter.Load(insns, &sockfilter.LoadOptions{Maps: map[string]*sockfilter.Map{"counts": counts}})
	if err != nil {
		log.Fatalf("%+v", err)
	}
	defer prog.Close()

	arp := make([]byte, 42)
	arp[12], arp[13] = 0x08, 0x06
	for range 3 {
		if _, err := prog.Test(arp, packet.LinkEthernet); err != nil {
			log.Fatal(err)
		}
	}
	it := counts.Iterate()
	for it.Next() {
		fmt.Printf("EtherType %#04x: %d\n", binary.NativeEndian.Uint32(it.Key()), binary.NativeEndian.Uint64(it.Value()))
	}
	if err := it.Err(); err != nil {
		log.Fatal(err)
	}
	// EtherType 0x0806: 3
}

// Send a record per frame to user space through a ring buffer and read
// it in place. (Needs root: not run by go test.)
func ExampleNewRingBufReader() {
	events, err := sockfilter.NewMap(&sockfilter.MapSpec{Type: sockfilter.RingBuf, Name: "events", MaxEntries: 1 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer events.Close()

	// The record is skb->len, 4 bytes, from the stack.
	insns := asm.Instructions{
		skb.Len.Load(asm.R2, asm.R1),
		asm.StoreMem(asm.R10, -4, asm.R2, asm.Word),
		asm.LoadMapPtr(asm.R1, "events"),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.Mov.Imm(asm.R3, 4),
		asm.Mov.Imm(asm.R4, 0),
		asm.Call(asm.FnRingbufOutput),
		asm.Mov.Imm(asm.R0, 0),
		asm.Exit(),
	}
	prog, err := sockfilter.Load(insns, &sockfilter.LoadOptions{Maps: map[string]*sockfilter.Map{"events": events}})
	if err != nil {
		log.Fatalf("%+v", err)
	}
	defer prog.Close()

	r, err := sockfilter.NewRingBufReader(events)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	arp := make([]byte, 42)
	arp[12], arp[13] = 0x08, 0x06
	if _, err := prog.Test(arp, packet.LinkEthernet); err != nil {
		log.Fatal(err)
	}
	rec, err := r.Next() // valid until the next read
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("skb->len", binary.NativeEndian.Uint32(rec)) // the test run strips the Ethernet header
	// skb->len 28
}

// MapSpec mistakes are caught before the kernel sees them, with an error
// that says what is wrong.
func ExampleMapSpec() {
	_, err := sockfilter.NewMap(&sockfilter.MapSpec{Type: sockfilter.Hash, Name: "flow-table", KeySize: 4, ValueSize: 8, MaxEntries: 1024})
	fmt.Println(err)
	_, err = sockfilter.NewMap(&sockfilter.MapSpec{Type: sockfilter.RingBuf, MaxEntries: uint32(3 * os.Getpagesize())})
	fmt.Println(err != nil)
	// Output:
	// create map "flow-table": name "flow-table" has the character '-': the kernel takes only [A-Za-z0-9_.]
	// true
}
