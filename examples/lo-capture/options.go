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
}

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
