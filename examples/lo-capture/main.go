// Command lo-capture is a small tcpdump-like capture of TCP and UDP records:
// it compiles a pcap-filter expression to an eBPF socket filter, attaches it
// to an AF_PACKET socket on one interface, and prints one record per frame
// that passes — addresses, ports, protocol, time and lengths — as a table
// or as JSON lines. It can also save the frames to a pcap file, or read one
// back and apply the same eBPF program to it offline.
//
// Run it as root (or with CAP_BPF and CAP_NET_RAW):
//
//	sudo go run ./examples/lo-capture -demo
//	sudo go run ./examples/lo-capture -i lo -f 'udp dst port 53' -c 10
//	sudo go run ./examples/lo-capture -f 'tcp port 8080' -json -w out.pcap
//	go run ./examples/lo-capture -r out.pcap -f 'tcp[tcpflags] & tcp-syn != 0'
//	go run ./examples/lo-capture -d -f 'tcp and dst port 80'
//
// Records go to standard output; the start line, the final counts and
// errors go to standard error. It exits 1 on errors and 2 on usage errors.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the parsed command-line flags.
type options struct {
	iface   string
	expr    string
	count   int
	timeout time.Duration
	json    bool
	write   string
	read    string
	dump    bool
	verbose bool
	both    bool
	demo    bool
	exprSet bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "lo-capture: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.timeout)
		defer cancel()
	}

	switch {
	case opts.dump:
		err = dumpProgram(opts, stdout)
	case opts.read != "":
		err = readFile(ctx, opts, stdout, stderr)
	default:
		err = capture(ctx, opts, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "lo-capture: %v\n", err)
		return 1
	}
	return 0
}

// parseFlags parses args into options, checking them.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("lo-capture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.iface, "i", "lo", "capture on interface `IFACE`")
	fs.StringVar(&o.expr, "f", defaultFilter, "pcap-filter `EXPR`ession selecting the frames")
	fs.IntVar(&o.count, "c", 0, "stop after `N` records (0: no limit)")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop after `DUR`ation (0: no limit)")
	fs.BoolVar(&o.json, "json", false, "print JSON lines instead of the table")
	fs.StringVar(&o.write, "w", "", "also write the frames to the pcap `FILE`")
	fs.StringVar(&o.read, "r", "", "read frames from the pcap `FILE` instead of an interface")
	fs.BoolVar(&o.dump, "d", false, "print the compiled eBPF program and exit")
	fs.BoolVar(&o.verbose, "v", false, "print the verifier's log")
	fs.BoolVar(&o.both, "both", false, "keep both loopback copies of each packet (outgoing too)")
	fs.BoolVar(&o.demo, "demo", false, "capture on lo while sending a little TCP and UDP traffic over it")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: lo-capture [flags]\n\nCapture TCP/UDP records with an eBPF socket filter.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "f" {
			o.exprSet = true
		}
	})
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q (quote the filter and pass it with -f)", fs.Arg(0))
	case o.count < 0:
		return o, fmt.Errorf("-c must not be negative")
	case o.timeout < 0:
		return o, fmt.Errorf("-timeout must not be negative")
	case o.read != "" && o.demo:
		return o, fmt.Errorf("-r and -demo exclude each other")
	case o.read != "" && o.both:
		return o, fmt.Errorf("-both applies to live capture, not to -r")
	case o.demo && o.iface != "lo":
		return o, fmt.Errorf("-demo captures on lo; drop -i")
	}
	return o, nil
}

// defaultFilter is the filter when -f is not given.
const defaultFilter = "tcp or udp"
