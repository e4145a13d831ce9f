package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// demoTraffic is the loopback traffic -demo generates while capturing: a few
// UDP datagrams and one short TCP exchange, to ports of its own, so that a
// newcomer sees records at once. It sends nothing off the machine.
type demoTraffic struct {
	tcp  *net.TCPListener
	udp  *net.UDPConn
	wg   sync.WaitGroup
	once sync.Once
}

// demoDatagrams is how many UDP datagrams the demo sends.
const demoDatagrams = 3

// demoGrace is how long the capture goes on after the demo's traffic, for
// the last frames to be read.
const demoGrace = 300 * time.Millisecond

func newDemoTraffic() (*demoTraffic, error) {
	tl, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	ul, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tl.Close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	return &demoTraffic{tcp: tl, udp: ul}, nil
}

// filter returns the filter expression that selects the demo's traffic.
func (d *demoTraffic) filter() string {
	return fmt.Sprintf("tcp port %d or udp port %d", d.tcp.Addr().(*net.TCPAddr).Port, d.udp.LocalAddr().(*net.UDPAddr).Port)
}

// Start sends the traffic from goroutines, which stop early if ctx ends.
func (d *demoTraffic) Start(ctx context.Context, stderr io.Writer) {
	fmt.Fprintf(stderr, "demo: sending %d UDP datagrams to %v and one TCP exchange with %v\n",
		demoDatagrams, d.udp.LocalAddr(), d.tcp.Addr())
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		d.serveTCP()
	}()
	go func() {
		defer d.wg.Done()
		if err := d.send(ctx); err != nil {
			fmt.Fprintf(stderr, "demo: %v\n", err)
		}
	}()
}

// Done returns a channel closed once the traffic has been sent.
func (d *demoTraffic) Done() <-chan struct{} {
	ch := make(chan struct{})
	go func() { d.wg.Wait(); close(ch) }()
	return ch
}

// serveTCP accepts one connection and echoes what it reads.
func (d *demoTraffic) serveTCP() {
	d.tcp.SetDeadline(time.Now().Add(5 * time.Second))
	c, err := d.tcp.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return
	}
	c.Write(buf[:n])
}

// send sends the UDP datagrams and makes the TCP exchange.
func (d *demoTraffic) send(ctx context.Context) error {
	uc, err := net.DialUDP("udp4", nil, d.udp.LocalAddr().(*net.UDPAddr))
	if err != nil {
		return err
	}
	defer uc.Close()
	for i := range demoDatagrams {
		if _, err := fmt.Fprintf(uc, "hello from purebpf, datagram %d", i+1); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tc, err := dialer.DialContext(dctx, "tcp4", d.tcp.Addr().String())
	if err != nil {
		return err
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(tc, "hello from purebpf over TCP"); err != nil {
		return err
	}
	buf := make([]byte, 512)
	_, err = tc.Read(buf)
	return err
}

// Close stops the demo's listeners and waits for its goroutines.
func (d *demoTraffic) Close() error {
	d.once.Do(func() {
		d.tcp.Close()
		d.udp.Close()
	})
	d.wg.Wait()
	return nil
}
