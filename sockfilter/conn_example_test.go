package sockfilter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os/signal"
	"syscall"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter"
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

	conn, err := sockfilter.Listen("lo", prog, &sockfilter.Config{Outgoing: true})
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
