package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// The command line is parsed as tcpdump's getopt_long parses its own, so
// that tcpdump's habits work: letters combine (-nn, -vvv, -tttt, -XX,
// -nvc10), a value may be attached (-c10, -iany, -s0, -wfile) or be the
// next argument, long options take --name=value or --name value,
// non-option arguments may come before, between or after the options (as
// with glibc's getopt) and are the filter expression, joined with spaces,
// and -- ends the options. lo-capture's own multi-letter flags (-json,
// -timeout, -both, -demo) are recognised by name, with one dash or two,
// before an argument is taken apart into letters.

// errHelp is returned by parseArgs for -h and --help.
var errHelp = errors.New("help requested")

// usageError is a command-line error: run prints it, then the usage, and
// exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// flagSpec describes one option.
type flagSpec struct {
	letter byte   // the short option letter, or 0
	long   string // the long name, after "--"; "" if none
	// own marks lo-capture's multi-letter flags, which take one dash too
	// (-json) and, when boolean, Go flag's -name=true|false.
	own     bool
	arg     string // the value's name in the usage; "" for flags without one
	help    string
	set     func(o *options, value string) error
	hidden  bool // accepted, not listed in the usage (tcpdump no-ops)
	counted bool // may be repeated for more (-vv)
}

// flags is the option table, in the order the usage lists it.
var flags = []flagSpec{
	{letter: 'i', long: "interface", arg: "IFACE", help: "capture on IFACE (default lo), or any for all of them; a number from -D picks by index", set: func(o *options, v string) error { o.iface, o.ifaceSet = v, true; return nil }},
	{letter: 'f', arg: "EXPR", help: "the filter expression (as the trailing arguments also give it)", set: func(o *options, v string) error { o.expr, o.exprFlag = v, true; return nil }},
	{letter: 'F', arg: "FILE", help: "read the filter expression from FILE", set: func(o *options, v string) error { o.filterFile = v; return nil }},
	{letter: 'c', arg: "N", help: "stop after N records", set: func(o *options, v string) error { return setInt(&o.count, "-c", v, 0) }},
	{letter: 'r', arg: "FILE", help: "read frames from the pcap FILE (- for standard input) instead of an interface", set: func(o *options, v string) error { o.read = v; return nil }},
	{letter: 'w', arg: "FILE", help: "write the frames to the pcap FILE (- for standard output); records are not printed unless --print", set: func(o *options, v string) error { o.write = v; return nil }},
	{long: "print", help: "print records even with -w", set: func(o *options, _ string) error { o.print = true; return nil }},
	{long: "follow-symlink", help: "let -w write through a symbolic link (refused by default)", set: func(o *options, _ string) error { o.followSymlink = true; return nil }},
	{letter: 's', long: "snapshot-length", arg: "SNAPLEN", help: "keep the first SNAPLEN bytes of each frame, cut in the kernel (0: 262144)", set: func(o *options, v string) error { return setInt(&o.snaplen, "-s", v, 0) }},
	{letter: 'Q', long: "direction", arg: "DIR", help: "capture frames going in, out or inout", set: setDirection},
	{letter: 'p', long: "no-promiscuous-mode", help: "do not put the interface in promiscuous mode", set: func(o *options, _ string) error { o.noPromisc = true; return nil }},
	{letter: 'B', long: "buffer-size", arg: "KiB", help: "the kernel's capture ring, in KiB (default 32768)", set: func(o *options, v string) error { return setInt(&o.bufferKiB, "-B", v, 1) }},
	{letter: 'e', help: "print the link-level header: MAC addresses and EtherType", set: func(o *options, _ string) error { o.linkHeader = true; return nil }},
	{letter: 'q', help: "quiet: leave out the Info column", set: func(o *options, _ string) error { o.quiet = true; return nil }},
	{letter: 'v', counted: true, help: "verbose: add the IP header's fields (TTL, ID, flags, length) to Info", set: func(o *options, _ string) error { o.verbose++; return nil }},
	{letter: 't', counted: true, help: "time: -t none, -tt Unix seconds, -ttt delta from the previous, -tttt local date and time, -ttttt delta from the first", set: func(o *options, _ string) error { o.tflag++; return nil }},
	{letter: 'A', counted: true, help: "print each frame's bytes as ASCII under its record (-AA: with the link-level header)", set: func(o *options, _ string) error { o.ascii++; return nil }},
	{letter: 'x', counted: true, help: "print each frame's bytes in hex (-xx: with the link-level header)", set: func(o *options, _ string) error { o.hex++; return nil }},
	{letter: 'X', counted: true, help: "print each frame's bytes in hex and ASCII (-XX: with the link-level header)", set: func(o *options, _ string) error { o.hexASCII++; return nil }},
	{letter: 'l', help: "line-buffered output: write each record as it is made", set: func(o *options, _ string) error { o.lineBuffered = true; return nil }},
	{letter: 'U', long: "packet-buffered", help: "packet-buffered output: write each frame to the -w file (and each record) at once", set: func(o *options, _ string) error { o.packetBuffered = true; return nil }},
	{letter: 'G', arg: "SECONDS", help: "start a new -w file every SECONDS; strftime conversions in the name", set: func(o *options, v string) error { return setInt(&o.rotateSeconds, "-G", v, 1) }},
	{letter: 'C', arg: "SIZE", help: "start a new -w file when it passes SIZE millions of bytes (or SIZEk, SIZEm, SIZEg: KiB, MiB, GiB)", set: setFileSize},
	{letter: 'W', arg: "N", help: "with -C, keep N files and overwrite the oldest; with -G, stop after N files", set: func(o *options, v string) error { return setInt(&o.fileCount, "-W", v, 1) }},
	{letter: 'Z', long: "relinquish-privileges", arg: "USER", help: "once the socket and files are open, run as USER and USER's groups", set: func(o *options, v string) error { o.user = v; return nil }},
	{letter: 'D', long: "list-interfaces", help: "list the interfaces, with their index and link type, and exit", set: func(o *options, _ string) error { o.listInterfaces = true; return nil }},
	{letter: 'L', long: "list-data-link-types", help: "list the interface's link type and exit", set: func(o *options, _ string) error { o.listLinkTypes = true; return nil }},
	{long: "count", help: "with -r, print only the number of frames the filter passes", set: func(o *options, _ string) error { o.countOnly = true; return nil }},
	{letter: 'd', counted: true, help: "print the compiled eBPF program and exit", set: func(o *options, _ string) error { o.dump++; return nil }},
	{long: "verifier-log", help: "print the kernel verifier's log of the program", set: func(o *options, _ string) error { o.verifierLog = true; return nil }},
	{long: "json", own: true, help: "print JSON lines instead of the table", set: func(o *options, _ string) error { o.json = true; return nil }},
	{long: "timeout", own: true, arg: "DUR", help: "stop after the duration DUR (1m, 2.5s, ...)", set: setTimeout},
	{long: "both", own: true, help: "on lo, keep both copies of each packet, the outgoing one too (implies -Q inout)", set: func(o *options, _ string) error { o.both = true; return nil }},
	{long: "demo", own: true, help: "capture on lo while sending a little TCP and UDP traffic over it", set: func(o *options, _ string) error { o.demo = true; return nil }},
	{letter: 'k', help: "build each record in the kernel (a BPF ring buffer) instead of copying frames: the same lines, no -w, -e, -v, -A, -x, -X", set: func(o *options, _ string) error { o.kernel = true; return nil }},
	{long: "flows", own: true, arg: "DUR", help: "count flows in the kernel; every DUR print the interval's flows, largest first, and at the end the totals (-c N: stop after N intervals)", set: setFlows},
	{long: "ipfix", own: true, arg: "HOST:PORT", help: "count flows in the kernel and export them as IPFIX over UDP to HOST:PORT (alone: print nothing but the counts)", set: func(o *options, v string) error { o.ipfix = v; return nil }},
	{long: "flow-active", own: true, arg: "DUR", help: "with -flows or -ipfix, export a flow still active after DUR (default 60s)", set: func(o *options, v string) error { return setDuration(&o.flowActive, "-flow-active", v) }},
	{long: "flow-idle", own: true, arg: "DUR", help: "with -flows or -ipfix, end a flow idle for DUR (default 15s)", set: func(o *options, v string) error { return setDuration(&o.flowIdle, "-flow-idle", v) }},
	{long: "flows-percpu", own: true, help: "with -flows or -ipfix, keep the flow table per CPU (no contention, more memory)", set: func(o *options, _ string) error { o.perCPU = true; return nil }},
	{letter: 'h', long: "help", help: "print this help and exit", set: func(o *options, _ string) error { return errHelp }},
	{long: "version", help: "print the version and exit", set: func(o *options, _ string) error { o.version = true; return nil }},

	// tcpdump flags that change nothing here, accepted so that tcpdump
	// command lines work: -n and -N (addresses and ports are always
	// numbers), -S (sequence numbers are always absolute), -K (checksums
	// are never verified), --immediate-mode (records are written within
	// flushEvery anyway).
	{letter: 'n', counted: true, hidden: true, set: noop},
	{letter: 'N', counted: true, hidden: true, set: noop},
	{letter: 'S', long: "absolute-tcp-sequence-numbers", hidden: true, set: noop},
	{letter: 'K', long: "dont-verify-checksums", hidden: true, set: noop},
	{long: "immediate-mode", hidden: true, set: noop},
}

func noop(*options, string) error { return nil }

// lookupLetter returns the spec of the short option c.
func lookupLetter(c byte) *flagSpec {
	for i := range flags {
		if flags[i].letter == c {
			return &flags[i]
		}
	}
	return nil
}

// lookupLong returns the spec whose long name is name; with oneDash, only
// lo-capture's own flags match, as they alone take one dash.
func lookupLong(name string, oneDash bool) *flagSpec {
	for i := range flags {
		if f := &flags[i]; f.long == name && (f.own || !oneDash) {
			return f
		}
	}
	return nil
}

// parseArgs parses the command line (without the program name) into
// options. The operands — the arguments that are not options — are
// joined with spaces into the filter expression. It returns errHelp for
// -h, a *usageError for anything the command line gets wrong.
func parseArgs(args []string) (options, error) {
	var o options
	var operands []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			operands = append(operands, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(arg, "--"):
			name, value, hasValue := strings.Cut(arg[2:], "=")
			f := lookupLong(name, false)
			if f == nil {
				return o, usagef("unknown flag --%s", name)
			}
			used, err := applyNamed(&o, f, "--"+name, value, hasValue, args[i+1:])
			if err != nil {
				return o, err
			}
			i += used
		case len(arg) > 1 && arg[0] == '-':
			name, value, hasValue := strings.Cut(arg[1:], "=")
			if f := lookupLong(name, true); f != nil {
				used, err := applyNamed(&o, f, "-"+name, value, hasValue, args[i+1:])
				if err != nil {
					return o, err
				}
				i += used
				continue
			}
			used, err := applyLetters(&o, arg, args[i+1:])
			if err != nil {
				return o, err
			}
			i += used
		default: // an operand, "-" included (tcpdump's getopt leaves it)
			operands = append(operands, arg)
		}
	}
	if len(operands) > 0 {
		o.exprArgs = strings.Join(operands, " ")
		o.exprArgsSet = true
	}
	return o, checkOptions(&o)
}

// applyNamed applies a long option, or one of lo-capture's own by name.
// rest is what follows on the command line; it returns how many of those
// arguments it used.
func applyNamed(o *options, f *flagSpec, shown, value string, hasValue bool, rest []string) (int, error) {
	if f.arg == "" {
		if hasValue {
			// Go's flag package took -json=true; keep that working for
			// lo-capture's own flags.
			switch {
			case f.own && value == "true":
			case f.own && value == "false":
				return 0, nil
			default:
				return 0, usagef("flag %s takes no value (got %q)", shown, value)
			}
		}
		return 0, f.set(o, "")
	}
	used := 0
	if !hasValue {
		if len(rest) == 0 {
			return 0, usagef("flag %s needs a value: %s", shown, f.arg)
		}
		value, used = rest[0], 1
	}
	return used, f.set(o, value)
}

// applyLetters applies a cluster of short options such as -nvc10: each
// letter without a value is applied, and the first that takes one takes
// the rest of the cluster, or else the next argument. It returns how many
// of rest it used.
func applyLetters(o *options, arg string, rest []string) (int, error) {
	for j := 1; j < len(arg); j++ {
		c := arg[j]
		f := lookupLetter(c)
		if f == nil {
			if c >= 0x20 && c < 0x7f {
				return 0, usagef("unknown flag -%c", c)
			}
			return 0, usagef("unknown flag -%q", c)
		}
		if f.arg == "" {
			if err := f.set(o, ""); err != nil {
				return 0, err
			}
			continue
		}
		if j+1 < len(arg) {
			value := arg[j+1:]
			// Go's flag package took -c=10; a value never starts with "=".
			value = strings.TrimPrefix(value, "=")
			return 0, f.set(o, value)
		}
		if len(rest) == 0 {
			return 0, usagef("flag -%c needs a value: %s", c, f.arg)
		}
		return 1, f.set(o, rest[0])
	}
	return 0, nil
}

// printUsage writes the usage: a synopsis line, then one line a flag.
func printUsage(w io.Writer) {
	var letters []byte
	for _, f := range flags {
		if f.letter != 0 && f.arg == "" && !f.hidden && f.letter != 'h' {
			letters = append(letters, f.letter)
		}
	}
	fmt.Fprintf(w, "usage: lo-capture [-%s] [-i IFACE] [-c N] [-w FILE] [-r FILE] [-s SNAPLEN] ... [expression]\n\n", letters)
	fmt.Fprintf(w, "Capture records of the frames a pcap-filter expression selects, with an eBPF\nsocket filter. The expression is the arguments after the flags, or -f EXPR\n(default %q).\n\n", defaultFilter)
	for _, f := range flags {
		if f.hidden {
			continue
		}
		var names []string
		if f.letter != 0 {
			names = append(names, "-"+string(f.letter))
		}
		if f.long != "" {
			dash := "--"
			if f.own {
				dash = "-"
			}
			names = append(names, dash+f.long)
		}
		name := strings.Join(names, ", ")
		if f.arg != "" {
			name += " " + f.arg
		}
		fmt.Fprintf(w, "  %-28s %s\n", name, f.help)
	}
	fmt.Fprintf(w, "\nAccepted and without effect, as addresses and ports are always numbers,\nsequence numbers always absolute and checksums never checked: -n, -N, -S, -K,\n--immediate-mode.\n")
}
