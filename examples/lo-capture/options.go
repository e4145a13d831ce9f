package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/purebpf/purebpf/sockfilter/pcapfile"
)

// options are the parsed command line.
type options struct {
	iface    string
	ifaceSet bool
	// The filter: -f's, the operands', or -F's file's. expr is the one
	// used, set by checkOptions (and by -demo).
	expr        string
	exprFlag    bool
	exprArgs    string
	exprArgsSet bool
	filterFile  string

	count   int
	timeout time.Duration
	read    string
	write   string
	print   bool

	followSymlink bool
	snaplen       int    // -s; 0 is the default
	direction     string // -Q: "", "in", "out" or "inout"
	both          bool   // -both
	noPromisc     bool
	bufferKiB     int

	json           bool
	linkHeader     bool // -e
	quiet          bool // -q
	verbose        int  // -v
	tflag          int  // -t, -tt, ...
	ascii          int  // -A
	hex            int  // -x
	hexASCII       int  // -X
	lineBuffered   bool // -l
	packetBuffered bool // -U

	rotateSeconds int   // -G
	fileSize      int64 // -C, in bytes
	fileCount     int   // -W
	user          string

	countOnly      bool // --count
	listInterfaces bool
	listLinkTypes  bool
	dump           int
	verifierLog    bool
	demo           bool
	version        bool

	// Capture in the kernel: -k builds records there, -flows and -ipfix
	// count flows there; neither copies a frame.
	kernel     bool          // -k
	flows      time.Duration // -flows: the interval of the flow reports; 0 without
	ipfix      string        // -ipfix HOST:PORT
	flowActive time.Duration // -flow-active
	flowIdle   time.Duration // -flow-idle
	perCPU     bool          // -flows-percpu
}

// flowMode reports whether the capture counts flows in the kernel: -flows,
// -ipfix, or both.
func (o *options) flowMode() bool { return o.flows > 0 || o.ipfix != "" }

// defaultFilter is the filter when none is given.
const defaultFilter = "tcp or udp"

// maxTimeFlags is the most -t's there can be: -ttttt.
const maxTimeFlags = 5

// printRecords reports whether records go to standard output: always,
// unless -w writes the frames and --print is not given, as tcpdump does.
func (o *options) printRecords() bool { return (o.write == "" || o.print) && !o.countOnly }

// checkOptions checks what the flags say together, and settles the
// filter expression.
func checkOptions(o *options) error {
	if !o.ifaceSet {
		o.iface = "lo"
	}
	switch {
	case o.exprFlag && o.exprArgsSet:
		return usagef("the filter is given both with -f and as arguments (%q): give it once", o.exprArgs)
	case o.filterFile != "" && o.exprFlag:
		return usagef("the filter is given both with -f and with -F: give it once")
	case o.exprFlag:
	case o.exprArgsSet:
		o.expr = o.exprArgs
	default:
		o.expr = defaultFilter
	}
	dumps := 0
	for _, n := range []int{o.ascii, o.hex, o.hexASCII} {
		if n > 0 {
			dumps++
		}
	}
	switch {
	case o.count < 0:
		return usagef("-c must not be negative")
	case o.timeout < 0:
		return usagef("-timeout must not be negative")
	case o.snaplen > pcapfile.DefaultSnaplen:
		return usagef("invalid snapshot length %d: it must be 0 to %d", o.snaplen, pcapfile.DefaultSnaplen)
	case o.tflag > maxTimeFlags:
		return usagef("-t given %d times: -t to -ttttt are the time formats", o.tflag)
	case dumps > 1:
		return usagef("-A, -x and -X exclude each other")
	case dumps > 0 && o.json:
		return usagef("-A, -x and -X print under the table's lines, not with -json")
	case o.read != "" && o.demo:
		return usagef("-r and -demo exclude each other")
	case o.both && o.direction != "" && o.direction != "inout":
		return usagef("-both keeps lo's outgoing copies with -Q inout, not -Q %s", o.direction)
	case o.read != "" && (o.direction != "" || o.both || o.bufferKiB != 0):
		return usagef("-Q, -both and -B apply to live capture, not to -r")
	case o.demo && o.ifaceSet && o.iface != "lo":
		return usagef("-demo captures on lo; drop -i")
	case o.write == "-" && o.print:
		return usagef("-w - and --print would both write to standard output")
	case (o.rotateSeconds > 0 || o.fileSize > 0) && (o.write == "" || o.write == "-"):
		return usagef("-G and -C rotate the -w file: give -w FILE")
	case o.fileCount > 0 && o.rotateSeconds == 0 && o.fileSize == 0:
		return usagef("-W limits the files of -C or -G: give one of them")
	case o.countOnly && (o.read == "" || o.print || o.json || dumps > 0):
		return usagef("--count counts what -r reads, and prints nothing else")
	case o.write == "" && o.followSymlink:
		return usagef("--follow-symlink applies to -w")
	}
	return checkKernelOptions(o, dumps)
}

// checkKernelOptions checks -k's, -flows' and -ipfix's combinations: they
// copy no frame, so the flags that need frames — to write them, dump
// their bytes, or read the headers a record does not keep — are refused.
func checkKernelOptions(o *options, dumps int) error {
	if !o.kernel && !o.flowMode() {
		switch {
		case o.flowActive != 0 || o.flowIdle != 0 || o.perCPU:
			return usagef("-flow-active, -flow-idle and -flows-percpu tune -flows and -ipfix: give one of them")
		}
		return nil
	}
	mode := "-k"
	if o.flowMode() {
		mode = "-flows"
		if o.flows == 0 {
			mode = "-ipfix"
		}
	}
	switch {
	case o.kernel && o.flowMode():
		return usagef("-k prints a record per packet, -flows and -ipfix count flows: give one")
	case o.write != "":
		return usagef("%s builds records in the kernel and copies no frame: there are no frames for -w to write", mode)
	case dumps > 0:
		return usagef("%s copies no frame: there are no bytes for -A, -x or -X to print", mode)
	case o.linkHeader:
		return usagef("%s keeps no link-level header: -e needs the frames", mode)
	case o.verbose > 0:
		return usagef("%s keeps no IP header: -v needs the frames", mode)
	case o.snaplen > 0:
		return usagef("%s copies no frame, so there is nothing for -s to cut", mode)
	case o.read != "":
		return usagef("%s captures live: -r reads frames from a file, give one or the other", mode)
	case o.iface == "any":
		return usagef("%s parses each frame's link-level header, which -i any does not give: name one interface", mode)
	case o.verifierLog:
		return usagef("--verifier-log shows the filter's load, not %s's program", mode)
	case o.user != "":
		return usagef("-Z cannot be used with %s: reading the kernel's maps needs CAP_BPF until the end", mode)
	case o.kernel && (o.flowActive != 0 || o.flowIdle != 0 || o.perCPU):
		return usagef("-flow-active, -flow-idle and -flows-percpu tune -flows and -ipfix, not -k")
	case o.flowMode() && (o.tflag > 0 || o.quiet || o.lineBuffered || o.packetBuffered):
		return usagef("-t, -q, -l and -U shape records, not -flows' reports")
	case o.flowMode() && o.flows == 0 && o.count > 0:
		return usagef("-c counts -flows' intervals: give -flows DURATION with -ipfix, or -timeout")
	case o.flowMode() && o.json && o.flows == 0:
		return usagef("-json prints -flows' reports: give -flows DURATION with -ipfix")
	case o.flowActive < 0 || o.flowIdle < 0:
		return usagef("-flow-active and -flow-idle must not be negative")
	}
	return nil
}

// setFlows parses -flows' interval.
func setFlows(o *options, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < 10*time.Millisecond {
		return usagef("invalid value %q for -flows: want an interval of at least 10ms, such as 1s or 2.5s", v)
	}
	o.flows = d
	return nil
}

// setDuration parses a duration flag's value into *dst.
func setDuration(dst *time.Duration, flag, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return usagef("invalid value %q for %s: want a positive duration such as 15s or 1m", v, flag)
	}
	*dst = d
	return nil
}

// filterFromFile reads -F's file into o.expr, as tcpdump does: the whole
// file is the expression, its newlines white space, a # starting a
// comment to the end of its line. An expression given as arguments as
// well is ignored, as tcpdump ignores it, with a warning.
func filterFromFile(o *options, warn func(string)) error {
	if o.filterFile == "" {
		return nil
	}
	b, err := os.ReadFile(o.filterFile)
	if err != nil {
		return fmt.Errorf("filter file: %w", err)
	}
	if o.exprArgsSet {
		warn(fmt.Sprintf("the filter comes from -F %s; the expression %q given as arguments is ignored", o.filterFile, o.exprArgs))
	}
	var words []string
	for line := range strings.Lines(string(b)) {
		line, _, _ = strings.Cut(line, "#")
		words = append(words, strings.Fields(line)...)
	}
	o.expr = strings.Join(words, " ")
	return nil
}

// setInt parses a decimal number of at least min into *dst.
func setInt(dst *int, flag, v string, min int) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		return usagef("invalid value %q for %s: want a whole number of at least %d", v, flag, min)
	}
	*dst = n
	return nil
}

func setTimeout(o *options, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return usagef("invalid value %q for -timeout: want a duration such as 30s or 1m", v)
	}
	o.timeout = d
	return nil
}

func setDirection(o *options, v string) error {
	switch v {
	case "in", "out", "inout":
		o.direction = v
		return nil
	}
	return usagef("invalid direction %q for -Q: want in, out or inout", v)
}

// setFileSize parses -C's size: millions of bytes, as tcpdump 4.99 has
// it, or with a k, m or g suffix KiB, MiB or GiB, as later tcpdump does.
func setFileSize(o *options, v string) error {
	unit := int64(1_000_000)
	num := v
	if n := len(v); n > 0 {
		switch v[n-1] {
		case 'k', 'K':
			unit, num = 1<<10, v[:n-1]
		case 'm', 'M':
			unit, num = 1<<20, v[:n-1]
		case 'g', 'G':
			unit, num = 1<<30, v[:n-1]
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > math.MaxInt64/unit {
		return usagef("invalid file size %q for -C: want a positive number of millions of bytes, or a number with k, m or g", v)
	}
	o.fileSize = n * unit
	return nil
}
