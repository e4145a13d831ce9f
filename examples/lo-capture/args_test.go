package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestParseArgs parses tcpdump command lines — from tcpdump(8)'s examples
// and everyday use — and lo-capture's own.
func TestParseArgs(t *testing.T) {
	// base returns the options of an empty command line with f applied.
	base := func(f func(o *options)) options {
		o := options{iface: "lo", expr: defaultFilter}
		if f != nil {
			f(&o)
		}
		return o
	}
	args := func(expr string) func(o *options) {
		return func(o *options) { o.expr, o.exprArgs, o.exprArgsSet = expr, expr, true }
	}
	tests := []struct {
		args string // split at spaces; "_" stands for an empty argument
		want options
	}{
		{"", base(nil)},
		// tcpdump(8)'s examples: the expression as several arguments.
		{"host sundown", base(args("host sundown"))},
		{`host helios and ( hot or ace )`, base(args("host helios and ( hot or ace )"))},
		{"tcp[tcpflags] & (tcp-rst|tcp-ack) == (tcp-rst|tcp-ack)", base(args("tcp[tcpflags] & (tcp-rst|tcp-ack) == (tcp-rst|tcp-ack)"))},
		// Combined letters, attached values, counts.
		{"-nnvvXSs 1514 -i eth0", base(func(o *options) {
			o.verbose, o.hexASCII, o.snaplen, o.iface, o.ifaceSet = 2, 1, 1514, "eth0", true
		})},
		{"-vvv -tttt -XX", base(func(o *options) { o.verbose, o.tflag, o.hexASCII = 3, 4, 2 })},
		{"-c10 -iany -s0 -wfile", base(func(o *options) {
			o.count, o.iface, o.ifaceSet, o.snaplen, o.write = 10, "any", true, 0, "file"
		})},
		{"-nvc10 udp", base(func(o *options) { o.verbose, o.count = 1, 10; args("udp")(o) })},
		{"-i lo -nn -c 10 tcp port 22", base(func(o *options) {
			o.iface, o.ifaceSet, o.count = "lo", true, 10
			args("tcp port 22")(o)
		})},
		// Options after the expression, as glibc's getopt permutes them.
		{"tcp port 80 -i lo -c 3", base(func(o *options) {
			o.iface, o.ifaceSet, o.count = "lo", true, 3
			args("tcp port 80")(o)
		})},
		// -- ends the options.
		{"-c 2 -- -c 3", base(func(o *options) { o.count = 2; args("-c 3")(o) })},
		// -w - and -r -, with -U and --print.
		{"-U -w -", base(func(o *options) { o.packetBuffered, o.write = true, "-" })},
		{"-r - --print -w out.pcap", base(func(o *options) { o.read, o.print, o.write = "-", true, "out.pcap" })},
		{"-l -e -q -p -A", base(func(o *options) {
			o.lineBuffered, o.linkHeader, o.quiet, o.noPromisc, o.ascii = true, true, true, true, 1
		})},
		{"-xx", base(func(o *options) { o.hex = 2 })},
		{"-B 4096 -Q in", base(func(o *options) { o.bufferKiB, o.direction = 4096, "in" })},
		{"--direction=out --buffer-size=64", base(func(o *options) { o.direction, o.bufferKiB = "out", 64 })},
		{"--interface lo --snapshot-length=96", base(func(o *options) { o.iface, o.ifaceSet, o.snaplen = "lo", true, 96 })},
		{"-Znobody -w f", base(func(o *options) { o.user, o.write = "nobody", "f" })},
		{"--relinquish-privileges=nobody", base(func(o *options) { o.user = "nobody" })},
		{"-w cap-%H%M%S -G 60 -W 10", base(func(o *options) { o.write, o.rotateSeconds, o.fileCount = "cap-%H%M%S", 60, 10 })},
		{"-w f -C 10 -W 3", base(func(o *options) { o.write, o.fileSize, o.fileCount = "f", 10_000_000, 3 })},
		{"-w f -C 1k", base(func(o *options) { o.write, o.fileSize = "f", 1024 })},
		{"-D", base(func(o *options) { o.listInterfaces = true })},
		{"--list-interfaces", base(func(o *options) { o.listInterfaces = true })},
		{"-L -i lo", base(func(o *options) { o.listLinkTypes, o.iface, o.ifaceSet = true, "lo", true })},
		{"-d tcp", base(func(o *options) { o.dump = 1; args("tcp")(o) })},
		{"-K -N -S --immediate-mode", base(nil)},
		{"-r f --count", base(func(o *options) { o.read, o.countOnly = "f", true })},
		// lo-capture's own flags, one dash or two, by name before letters.
		{"-json -timeout 2s -both -demo", base(func(o *options) {
			o.json, o.timeout, o.both, o.demo = true, 2*time.Second, true, true
		})},
		{"-k -c 5 -json udp", base(func(o *options) { o.kernel, o.count, o.json = true, 5, true; args("udp")(o) })},
		{"-flows 2s -json -c 3 -f udp", base(func(o *options) {
			o.flows, o.json, o.count, o.expr, o.exprFlag = 2*time.Second, true, 3, "udp", true
		})},
		{"-ipfix 127.0.0.1:4739 -flow-active 30s -flow-idle 5s -flows-percpu", base(func(o *options) {
			o.ipfix, o.flowActive, o.flowIdle, o.perCPU = "127.0.0.1:4739", 30*time.Second, 5*time.Second, true
		})},
		{"--json --timeout=1m", base(func(o *options) { o.json, o.timeout = true, time.Minute })},
		{"-json=false -timeout=5s", base(func(o *options) { o.timeout = 5 * time.Second })},
		{"-f udp --verifier-log", base(func(o *options) { o.expr, o.exprFlag, o.verifierLog = "udp", true, true })},
		{"-f _", base(func(o *options) { o.expr, o.exprFlag = "", true })},
		{"-F filter.txt", base(func(o *options) { o.filterFile = "filter.txt" })},
		// Go flag's -c=10, which lo-capture took before.
		{"-c=10 -i=lo", base(func(o *options) { o.count, o.iface, o.ifaceSet = 10, "lo", true })},
	}
	for _, tc := range tests {
		t.Run(tc.args, func(t *testing.T) {
			got, err := parseArgs(splitArgs(tc.args))
			if err != nil {
				t.Fatalf("parseArgs: %v", err)
			}
			if got != tc.want {
				t.Errorf("parseArgs =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// splitArgs splits s at spaces; "_" is an empty argument.
func splitArgs(s string) []string {
	args := strings.Fields(s)
	for i, a := range args {
		if a == "_" {
			args[i] = ""
		}
	}
	return args
}

// TestParseArgsErrors checks that bad command lines are usage errors that
// say what is wrong.
func TestParseArgsErrors(t *testing.T) {
	tests := []struct{ args, want string }{
		{"-y", "unknown flag -y"},
		{"-k -w f", "there are no frames for -w to write"},
		{"-k -X", "no bytes for -A, -x or -X"},
		{"-k -e", "-e needs the frames"},
		{"-k -v", "-v needs the frames"},
		{"-k -s 64", "nothing for -s to cut"},
		{"-k -r f", "-r reads frames from a file"},
		{"-k -i any", "-i any does not give"},
		{"-k -flows 1s", "give one"},
		{"-k -flow-idle 5s", "not -k"},
		{"-flows 1s -w f", "no frames for -w"},
		{"-ipfix 127.0.0.1:4739 -xx", "-ipfix copies no frame"},
		{"-flows 1s -tt", "not -flows' reports"},
		{"-ipfix 127.0.0.1:4739 -json", "give -flows DURATION"},
		{"-k -Z nobody", "-Z cannot be used with -k"},
		{"-ipfix 127.0.0.1:4739 -c 3", "-c counts -flows' intervals"},
		{"-flows 0s", `invalid value "0s" for -flows`},
		{"-flows soon", `invalid value "soon" for -flows`},
		{"-flows 1s -flow-active 0", `invalid value "0" for -flow-active`},
		{"-flow-idle 5s", "tune -flows and -ipfix"},
		{"-flows-percpu", "tune -flows and -ipfix"},
		{"-jsonx", "unknown flag -j"},
		{"--nope", "unknown flag --nope"},
		{"-c", "flag -c needs a value"},
		{"-i", "flag -i needs a value"},
		{"--timeout", "flag --timeout needs a value"},
		{"-c x", `invalid value "x" for -c`},
		{"-c -1", `invalid value "-1" for -c`},
		{"-s 300000", "invalid snapshot length 300000"},
		{"-B 0", `invalid value "0" for -B`},
		{"-Q sideways", `invalid direction "sideways"`},
		{"-C 0 -w f", `invalid file size "0"`},
		{"-C 1x -w f", `invalid file size "1x"`},
		{"-timeout soon", `invalid value "soon" for -timeout`},
		{"-tttttt", "-t given 6 times"},
		{"-A -X", "exclude each other"},
		{"-X -json", "not with -json"},
		{"-f tcp udp", "both with -f and as arguments"},
		{"-f tcp -F file", "both with -f and with -F"},
		{"-r f -demo", "-r and -demo exclude each other"},
		{"-r f -both", "apply to live capture"},
		{"-r f -B 64", "apply to live capture"},
		{"-demo -i eth0", "-demo captures on lo"},
		{"-both -Q in", "-both keeps lo's outgoing copies with -Q inout"},
		{"-w - --print", "both write to standard output"},
		{"-G 10", "give -w FILE"},
		{"-C 1 -w -", "give -w FILE"},
		{"-W 3 -w f", "-W limits the files of -C or -G"},
		{"--follow-symlink", "applies to -w"},
		{"--count", "--count counts what -r reads"},
		{"-r f --count -json", "--count counts what -r reads"},
		{"--print=yes", "flag --print takes no value"},
		{"-demo=maybe", "flag -demo takes no value"},
	}
	for _, tc := range tests {
		t.Run(tc.args, func(t *testing.T) {
			_, err := parseArgs(splitArgs(tc.args))
			if _, ok := errors.AsType[*usageError](err); !ok {
				t.Fatalf("parseArgs(%q) = %v, want a usage error", tc.args, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
	for _, args := range []string{"-h", "--help", "-nh"} {
		if _, err := parseArgs(splitArgs(args)); !errors.Is(err, errHelp) {
			t.Errorf("parseArgs(%q) = %v, want errHelp", args, err)
		}
	}
}

// TestUsageListsFlags checks that the usage names every flag it accepts,
// but the hidden no-ops.
func TestUsageListsFlags(t *testing.T) {
	var sb strings.Builder
	printUsage(&sb)
	usage := sb.String()
	for _, f := range flags {
		if f.hidden {
			continue
		}
		name := "--" + f.long
		if f.own {
			name = "-" + f.long
		}
		if f.letter != 0 {
			name = "-" + string(f.letter)
		}
		if !strings.Contains(usage, name) {
			t.Errorf("usage does not name %s", name)
		}
	}
}

// FuzzParseArgs checks that no command line makes parseArgs panic, and
// that what it accepts it accepts again unchanged.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"-nnvvXSs 1514 -i eth0", "-c10 -iany -s0 -wfile", "-- -c", "-json=false", "--direction=out", "-w f -C 1k -W 3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, " ")
		o1, err := parseArgs(args)
		if err != nil {
			return
		}
		o2, err := parseArgs(args)
		if err != nil || o1 != o2 {
			t.Fatalf("parseArgs is not deterministic on %q", s)
		}
	})
}
