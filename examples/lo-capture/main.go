// Command lo-capture is a tcpdump-like capture of records: it compiles a
// pcap-filter expression to an eBPF socket filter, attaches it to an
// AF_PACKET socket on one interface, and prints one record per frame that
// passes — addresses, ports, protocol, time and lengths — as a table or as
// JSON lines. It saves the frames to pcap files, or reads them back and
// applies the same eBPF program to them offline. It takes tcpdump's flags
// for these jobs, with their letters and meanings (see the README's
// lo-capture section for the list, and for the few it does not take).
//
// Run it as root (or with CAP_BPF and CAP_NET_RAW):
//
//	sudo go run ./examples/lo-capture -demo
//	sudo go run ./examples/lo-capture -i lo -c 10 udp dst port 53
//	sudo go run ./examples/lo-capture -json -w out.pcap --print 'tcp port 8080'
//	sudo go run ./examples/lo-capture -w 'cap-%H%M%S.pcap' -G 60 -W 10 -Z nobody
//	go run ./examples/lo-capture -r out.pcap -tttt -X 'tcp[tcpflags] & tcp-syn != 0'
//	go run ./examples/lo-capture -d tcp and dst port 80
//	sudo go run ./examples/lo-capture -k -json udp          # records built in the kernel
//	sudo go run ./examples/lo-capture -flows 2s tcp or udp  # a top view of the flows
//	sudo go run ./examples/lo-capture -ipfix collector:4739 # flows exported as IPFIX
//
// Records go to standard output — not with -w, unless --print — and the
// start line, the final counts and errors to standard error. SIGINT,
// SIGTERM and SIGHUP stop it with the -w file flushed up to its last
// whole record and the counts printed; SIGUSR1 prints the counts and goes
// on. It exits 0 when stopped so, 1 on an error (one line: what went
// wrong, and what to do where there is something to do) and 2 on a usage
// error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

func main() {
	closed := closedStdio()
	std := stdio{stdout: os.Stdout, stdin: os.Stdin, stdoutClosed: closed[1], stdinClosed: closed[0]}
	os.Exit(run(os.Args[1:], std, os.Stderr))
}

// stdio are the standard input and output a run uses, and whether they
// were closed when lo-capture started (>&-).
type stdio struct {
	stdout       io.Writer
	stdin        io.Reader
	stdoutClosed bool
	stdinClosed  bool
}

// errStdoutClosed is the error of writing to a standard output that was
// closed when lo-capture started.
var errStdoutClosed = &errOutput{errors.New("standard output is closed")}

// out returns standard output, or a writer that fails with
// errStdoutClosed when it was closed.
func (s stdio) out() io.Writer {
	if s.stdoutClosed {
		return closedWriter{}
	}
	return s.stdout
}

type closedWriter struct{}

func (closedWriter) Write([]byte) (int, error) { return 0, errStdoutClosed }

// run is the whole program; it returns the exit status.
func run(args []string, std stdio, stderr io.Writer) int {
	opts, err := parseArgs(args)
	if errors.Is(err, errHelp) {
		printUsage(std.out())
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "lo-capture: %v\n", err)
		printUsage(stderr)
		return 2
	}
	if opts.version {
		return reportError(stderr, printVersion(std.out()))
	}
	warn := func(msg string) { fmt.Fprintf(stderr, "lo-capture: warning: %s\n", msg) }
	if err := filterFromFile(&opts, warn); err != nil {
		return reportError(stderr, err)
	}

	sig := watchSignals()
	defer sig.stop()
	ctx := sig.ctx
	if opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.timeout)
		defer cancel()
	}
	s := &session{ctx: ctx, sig: sig, opts: &opts, std: std, stderr: stderr}
	switch {
	case opts.listInterfaces:
		err = listInterfaces(std.out())
	case opts.listLinkTypes:
		err = listLinkTypes(std.out(), resolveInterface(opts.iface))
	case opts.dump > 0:
		err = dumpProgram(&opts, std.out())
	case opts.read != "":
		err = s.readFile()
	case opts.kernel:
		err = s.captureRecords()
	case opts.flowMode():
		err = s.captureFlows()
	default:
		err = s.capture()
	}
	return reportError(stderr, err)
}

// reportError prints err's one line and returns the exit status.
func reportError(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, errorLine(err))
	return 1
}

// printVersion prints lo-capture's version, purebpf's and Go's, in the
// way tcpdump --version prints its own and libpcap's.
func printVersion(w io.Writer) error {
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	_, err := fmt.Fprintf(w, "lo-capture version %s\npurebpf (pure-Go eBPF, no libpcap), %s\n", version, runtime.Version())
	return err
}

// session is one capture or file read, with what it needs from run.
type session struct {
	ctx    context.Context
	sig    *signals
	opts   *options
	std    stdio
	stderr io.Writer
}
