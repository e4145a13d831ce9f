// Command flood sends UDP datagrams to a port on 127.0.0.1 as fast as one
// socket can, for the capture benchmark (../capture.sh). It is bounded in
// count (-n) and in time (-timeout), and it binds the destination port
// itself, never reading it, so that no datagram draws an ICMP port
// unreachable: the kernel drops them at the full socket, the same way in
// every round.
//
//	flood -n 1000000 -port 40000 -size 64
//
// It prints one line to standard error when done: datagrams sent, time,
// rate, and the CPU time the process used (getrusage(2): user and system,
// which with tick-based accounting includes the softirq work that
// delivering the datagrams on lo did in its context). It exits 1 on errors and 2 on usage errors.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 1000000, "number of datagrams to send")
	port := flag.Int("port", 0, "destination UDP port on 127.0.0.1 (required)")
	size := flag.Int("size", 64, "payload bytes per datagram")
	timeout := flag.Duration("timeout", 60*time.Second, "stop after this long even if not all are sent")
	flag.Parse()
	if flag.NArg() != 0 || *port <= 0 || *port > 65535 || *n < 0 || *size < 0 || *size > 65507 || *timeout <= 0 {
		fmt.Fprintln(os.Stderr, "usage: flood -port P [-n N] [-size BYTES] [-timeout D]")
		os.Exit(2)
	}
	sent, elapsed, err := flood(*n, *port, *size, *timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "flood: %v\n", err)
		os.Exit(1)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintf(os.Stderr, "flood: getrusage: %v\n", err)
		os.Exit(1)
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Fprintf(os.Stderr, "sent %d datagrams of %d bytes in %v (%.0f/s), cpu %d ns\n",
		sent, *size, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Seconds(), cpu.Nanoseconds())
	if sent < *n {
		fmt.Fprintf(os.Stderr, "flood: stopped after %v with %d of %d sent\n", *timeout, sent, *n)
		os.Exit(1)
	}
}

// flood sends n datagrams of size bytes to 127.0.0.1:port.
func flood(n, port, size int, timeout time.Duration) (int, time.Duration, error) {
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	sink, err := net.ListenUDP("udp4", dst)
	if err != nil {
		return 0, 0, fmt.Errorf("bind the destination port: %w", err)
	}
	defer sink.Close()
	c, err := net.DialUDP("udp4", nil, dst)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	payload := make([]byte, size)
	copy(payload, "purebpf capture benchmark")
	start := time.Now()
	deadline := start.Add(timeout)
	sent := 0
	for sent < n {
		// Look at the clock once every 4096 datagrams.
		if sent%4096 == 0 && time.Now().After(deadline) {
			break
		}
		if _, err := c.Write(payload); err != nil {
			return sent, time.Since(start), fmt.Errorf("send datagram %d: %w", sent+1, err)
		}
		sent++
	}
	return sent, time.Since(start), nil
}
