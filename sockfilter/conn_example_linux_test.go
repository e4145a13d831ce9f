package sockfilter_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"os/signal"
	"syscall"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// ExampleListen captures the frames on lo until interrupted, printing the
// direction and length of each. It needs CAP_BPF and CAP_NET_RAW, so it is
// not run as a test.
func ExampleListen() {
	prog, err := sockfilter.Load(asm.Instructions{
		asm.Mov.Imm(asm.R0, -1), // keep every frame, whole
		asm.Exit(),
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()

	// Both directions, the default; on lo, each packet once.
	conn, err := sockfilter.Listen("lo", prog, &sockfilter.Config{Direction: sockfilter.DirectionInOut})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT)
	defer stop()
	buf := make([]byte, 1<<16)
	for {
		n, info, err := conn.ReadFrameContext(ctx, buf)
		if errors.Is(err, context.Canceled) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %s %d/%d bytes\n", info.Time.Format("15:04:05.000000"), info.Direction, n, info.Length)
	}
	st, err := conn.Stats()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d frames received, %d dropped\n", st.Received, st.Drops)
}

// ExampleConn_NextFrame counts the UDP datagrams on lo by destination
// port, reading each frame in place from the Conn's ring. The filter returns 64, not -1,
// on a match: a snap length, so the kernel copies at most 64 bytes of each
// frame into the ring, while info.Length still gives the whole length. It
// needs CAP_BPF and CAP_NET_RAW, so it is not run as a test.
func ExampleConn_NextFrame() {
	prog, err := sockfilter.Load(asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),           // r6 = ctx, for the legacy loads
		asm.LoadAbs(skb.LLOff+12, asm.Half),   // r0 = ethertype
		asm.JNE.Imm(asm.R0, 0x0800, "drop"),   // not IPv4
		asm.LoadAbs(skb.LLOff+14+9, asm.Byte), // r0 = IP protocol
		asm.JNE.Imm(asm.R0, 17, "drop"),       // not UDP
		asm.Mov.Imm(asm.R0, 64),               // keep 64 bytes
		asm.Exit(),
		asm.Mov.Imm(asm.R0, 0).WithLabel("drop"), // drop the frame
		asm.Exit(),
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	conn, err := sockfilter.Listen("lo", prog, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT)
	defer stop()
	ports := make(map[uint16]int)
	var kept, whole int
	for {
		// frame is valid until the next read on conn: use it, or copy it.
		frame, info, err := conn.NextFrameContext(ctx)
		if errors.Is(err, context.Canceled) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		// An IPv4 header without options (IHL 5) puts the UDP destination
		// port at bytes 36 and 37 of the frame.
		if len(frame) >= 38 && frame[14]&0x0f == 5 {
			ports[binary.BigEndian.Uint16(frame[36:38])]++
		}
		kept += len(frame)
		whole += info.Length // the rest of each frame stayed in the kernel
	}
	fmt.Printf("datagrams by port: %v; %d of %d bytes copied\n", ports, kept, whole)
}
