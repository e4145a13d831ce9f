package sockfilter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os/signal"
	"syscall"
	"time"

	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

// ExampleListenRecords prints a line for each TCP and UDP packet on lo,
// decoded in the kernel: no frame is copied to user space. It needs
// CAP_BPF and CAP_NET_RAW, so it is not run as a test.
func ExampleListenRecords() {
	filter, err := pcapfilter.Compile("tcp or udp", packet.LinkEthernet)
	if err != nil {
		log.Fatal(err)
	}
	rc, err := sockfilter.ListenRecords("lo", filter, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT)
	defer stop()
	recs := make([]packet.Record, 64)
	var enc packet.TextEncoder
	var line []byte
	for {
		n, err := rc.NextRecordsContext(ctx, recs, nil)
		if errors.Is(err, context.Canceled) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		for i := range recs[:n] {
			line = enc.Append(line[:0], &recs[i])
			fmt.Print(string(line))
		}
	}
	st, err := rc.Stats()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d records, %d lost\n", st.Records, st.Lost)
}

// ExampleListenFlows meters the flows on lo, printing each flow record as
// it expires, and at the end those still going. It needs CAP_BPF and
// CAP_NET_RAW, so it is not run as a test.
func ExampleListenFlows() {
	fc, err := sockfilter.ListenFlows("lo", nil, &sockfilter.FlowConfig{
		ActiveTimeout: 30 * time.Second, IdleTimeout: 5 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer fc.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT)
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var flows []flow.Flow
	for done := false; !done; {
		select {
		case <-tick.C:
			flows, err = fc.ReadFlows(flows[:0])
		case <-ctx.Done():
			flows, err = fc.Flush(flows[:0])
			done = true
		}
		if err != nil {
			log.Fatal(err)
		}
		for _, f := range flows {
			fmt.Printf("%v: %d packets, %d bytes, %v\n", f.Key, f.Packets, f.Bytes, f.EndReason)
		}
	}
	st, err := fc.Stats()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d packets counted, %d lost with evicted flows\n", st.Packets, st.EvictedPackets)
}

// ExampleFlowConn_Table shows the busiest flows on lo now, as a top view
// does. It needs CAP_BPF and CAP_NET_RAW, so it is not run as a test.
func ExampleFlowConn_Table() {
	fc, err := sockfilter.ListenFlows("lo", nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer fc.Close()
	time.Sleep(time.Second)
	entries, err := fc.Table(nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		rate := float64(e.Bytes) / e.Last.Sub(e.First).Seconds()
		fmt.Printf("%v: %d packets, %d bytes, %.0f bytes/s\n", e.Key, e.Packets, e.Bytes, rate)
	}
}
