package pcapfilter

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr   string
		column int
		msg    string
	}{
		{"port", 5, `expected a port number after "port", found end of expression`},
		{"tcp src port", 13, `expected a port number after "port"`},
		{"tcp port abc", 10, `unknown port "abc"`},
		{"tcp port 70000", 10, "port 70000 is greater than 65535"},
		{"port 80 or 99999", 12, "port 99999 is greater than 65535"},
		{"portrange 90", 11, "expected a port range such as 1-1024"},
		{"net 10.0.0.1/33", 14, "prefix length 33 is greater than 32"},
		{"net 10.0.0.1/8", 5, `non-network bits set in "10.0.0.1/8"`},
		{"net 10.0.0.1 mask 255.0.0.0", 5, "non-network bits set"},
		{"net fe80::1/10", 5, "non-network bits set"},
		{"host 10.0.0.1/8", 14, `a mask needs "net"`},
		{"host ::1/64", 6, `a prefix length needs "net"`},
		{"host nosuch.invalid", 6, `unknown host "nosuch.invalid"`},
		{"port nosuchservice", 6, `unknown port "nosuchservice"`},
		{"portrange ftp-nosuch", 11, `unknown port in range "ftp-nosuch"`},
		{"ip proto nosuchproto", 10, `unknown protocol "nosuchproto"`},
		{`ether proto \nosuch`, 13, `unknown ether proto "nosuch"`},
		{"ether host nosuchether", 12, `unknown ether host "nosuchether"`},
		{"net nosuchnet", 5, `unknown network "nosuchnet"`},
		{"port (80 or tcp)", 13, `expected a port number in the parentheses, found "tcp"`},
		{"port (80 or 443", 16, `expected ")" to close "(" at column 6`},
		{"ifindex", 8, `expected an interface index after "ifindex"`},
		{"tcp and radio", 9, `"radio" is not supported by this compiler`},
		{"length", 7, `expected a comparison operator after "length"`},
		{"ifindex eth0", 9, `expected an interface index after "ifindex"`},
		{"host 1.2.3.4.5", 6, "expected an IPv4 address"},
		{"net 10/8", 7, "after the network number 10"},
		{"foo", 1, `unknown keyword "foo"`},
		{"80", 1, "expected a qualifier"},
		{"tcp and", 8, "expected a filter primitive"},
		{"not", 4, "expected a filter primitive"},
		{"(tcp", 5, `expected ")" to close "(" at column 1`},
		{"tcp[13", 7, `expected "]" to close "["`},
		{"tcp[13] & 2", 12, "expected a comparison operator"},
		{"tcp[13] =", 10, "expected an arithmetic expression"},
		{"len", 4, `expected a comparison operator after "len"`},
		{"ip[0:3] = 1", 6, "data size must be 1, 2, or 4"},
		{"ip[0] / 0 = 1", 7, "division by zero"},
		{"ip[0] % 0 = 1", 7, "division by zero"},
		{"ip[0] << 32 = 1", 7, "shift by more than 31 bits"},
		{"vlan 5000", 6, "VLAN ID 5000 is greater than 4095"},
		{"ip proto", 9, "expected a protocol number"},
		{`ip proto \foo`, 10, `unknown protocol "foo"`},
		{"llc foo", 5, "unknown LLC type name"},
		{"tcp multicast", 5, "multicast takes ether, ip or ip6"},
		{"ip port 80", 9, `"ip" qualifier applied to "port"`},
		{"tcp host 10.0.0.1", 10, `"tcp" qualifier applied to an IPv4 host`},
		{"ip6 host 10.0.0.1", 10, `"ip6" qualifier applied to an IPv4 host`},
		{"ip host ::1", 9, `"ip" qualifier applied to an IPv6 host`},
		{"ether host 1:2:3", 12, "expected a MAC address"},
		{"ip[0] = 1 = 2", 11, `expected "and", "or" or the end of the expression, found "="`},
		{"$", 1, "unexpected character '$'"},
		{"gateway 10.0.0.1", 1, `"gateway" is not supported`},
		{"vlan and 100", 10, "expected a qualifier"},
		// Characters no token holds, quoted as valid UTF-8.
		{"tcp port é", 10, "unexpected character 'é'"},
		{"tcp \xff", 5, "unexpected byte 0xff: the expression is not valid UTF-8"},
		{"host 10.0.0.1 → 10.0.0.2", 15, "unexpected character '→'"},
		// Numbers that do not fit 32 bits, in each context.
		{"port 4294967296", 6, "port 4294967296 is greater than 65535"},
		{"tcp port 80 or 99999999999999999999", 16, "port 99999999999999999999 is greater than 65535"},
		{"portrange 1-4294967296", 11, "port 4294967296 is greater than 65535"},
		{"ip proto 4294967296", 10, "number 4294967296 is out of range (max 4294967295)"},
		{"proto 0x100000000", 7, "number 0x100000000 is out of range (max 4294967295)"},
		{"ether proto 4294967296", 13, "number 4294967296 is out of range (max 4294967295)"},
		{"net 10.0.0.0/4294967296", 14, "prefix length 4294967296 is greater than 32"},
		{"len > 4294967296", 7, "number 4294967296 is out of range (max 4294967295)"},
		{"4294967296 = len", 1, "number 4294967296 is out of range (max 4294967295)"},
		{"ip[4294967296] = 1", 4, "number 4294967296 is out of range (max 4294967295)"},
		{"ip[0:4294967296] = 1", 6, "data size must be 1, 2, or 4, not 4294967296"},
		{"less 4294967296", 6, "length 4294967296 is out of range (max 4294967295)"},
		{"vlan 4294967296", 6, "VLAN ID 4294967296 is greater than 4095"},
		{"len = 0777777777777", 7, "number 0777777777777 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			insns, err := Compile(tt.expr, packet.LinkEthernet)
			if err == nil {
				t.Fatalf("compiled to\n%v\nwant an error", insns)
			}
			var ee *Error
			if !errors.As(err, &ee) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if ee.Column != tt.column || !strings.Contains(ee.Msg, tt.msg) {
				t.Errorf("error %q, want %q at column %d", err, tt.msg, tt.column)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("compile %q: ", tt.expr)) {
				t.Errorf("error %q does not name the expression", err)
			}
		})
	}
}

// TestCompileErrorText checks the text of errors of long expressions: one
// line that quotes at most a short excerpt around the column, with "…"
// where it is cut, and the tokens it names cut too, so that a 100 KB
// keyword does not make a 300 KB line (issue 11).
func TestCompileErrorText(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100_000)
	tests := []struct {
		name, expr string
		want       []string // substrings of the error
	}{
		{"long keyword", long, []string{
			`compile "` + strings.Repeat("x", excerptBefore+excerptAfter) + `…": `,
			`unknown keyword "` + strings.Repeat("x", maxQuoted) + `…" at column 1`}},
		{"error at the end", strings.Repeat("tcp or ", 1000) + "foo", []string{
			`compile "…or tcp or tcp or tcp or foo": unknown keyword "foo" at column 7001`}},
		{"error in the middle", strings.Repeat("tcp or ", 1000) + "port 99999 or " + strings.Repeat("udp or ", 1000) + "ip", []string{
			`compile "…p or tcp or tcp or port 99999 or udp or udp or u…": port 99999 is greater than 65535 at column 7006`}},
		{"cut between characters", "$" + strings.Repeat("é", 40), []string{
			`compile "$` + strings.Repeat("é", 23) + `…": unexpected character '$' at column 1`}},
		{"long number", "port " + strings.Repeat("9", 50_000), []string{
			`port ` + strings.Repeat("9", maxQuoted) + `… is greater than 65535 at column 6`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tt.expr, packet.LinkEthernet)
			if err == nil {
				t.Fatal("compiled, want an error")
			}
			checkCompileError(t, tt.expr, err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCompileRawIPErrors(t *testing.T) {
	t.Parallel()
	for _, expr := range []string{"vlan", "ether host 00:11:22:33:44:55"} {
		if _, err := Compile(expr, packet.LinkRawIP); err == nil {
			t.Errorf("%q on a raw-IP link compiled, want an error", expr)
		}
	}
	if _, err := Compile("ip", packet.LinkType(999)); err == nil {
		t.Error("unknown link type compiled, want an error")
	}
}

// TestCompileEquivalent checks the grammar's rules by compiling
// expressions that must give the same program.
func TestCompileEquivalent(t *testing.T) {
	t.Parallel()
	tests := [][2]string{
		// A bare value repeats the previous primitive's qualifiers.
		{"port 80 or 443", "port 80 or port 443"},
		{"tcp dst port 80 or 443", "tcp dst port 80 or tcp dst port 443"},
		{"host 10.0.0.1 or 10.0.0.2", "host 10.0.0.1 or host 10.0.0.2"},
		{"src net 10.0.0.0/8 and not 10.1.0.0/16", "src net 10.0.0.0/8 and not src net 10.1.0.0/16"},
		{"(port 80 or 443) and tcp", "(port 80 or port 443) and tcp"},
		// and and or have equal precedence and associate to the left.
		{"ip and udp or arp", "(ip and udp) or arp"},
		{"arp or ip and udp", "(arp or ip) and udp"},
		// Synonyms.
		{"tcp && !udp || icmp", "tcp and not udp or icmp"},
		{"ip[8] == 64", "ip[8] = 64"},
		{"ip proto \\tcp", "ip proto 6"},
		{"ip proto gre", "ip proto 47"},
		{"ip proto mptcp", "ip proto 262"},
		{"proto ospf", "proto 89"},
		{"port domain", "port 53"},
		{"tcp port http or https", "tcp port 80 or 443"},
		{"portrange 90-80", "portrange 80-90"},
		{"portrange 010-020", "portrange 10-20"},
		{"tcp portrange ftp-ssh", "tcp portrange 21-22"},
		{`ether proto \loopback`, "ether proto 0x9000"},
		{"ether host 001122334455", "ether host 00:11:22:33:44:55"},
		{"ether host 0011.2233.4455", "ether host 0:11:22:33:44:55"},
		{"ether host 00.11.22.33.44.55", "ether host 00-11-22-33-44-55"},
		{"tcp port (80 or 443)", "tcp port 80 or tcp port 443"},
		{"src host (10.0.0.1 or 10.0.0.2)", "src host 10.0.0.1 or src host 10.0.0.2"},
		{"host 10.0.0.2 and (10.0.0.3 or 10.0.0.4)", "host 10.0.0.2 and (host 10.0.0.3 or host 10.0.0.4)"},
		{"not port (22 or 53)", "not (port 22 or port 53)"},
		{"port (not 80 or (443 and 22))", "not port 80 or (port 443 and port 22)"},
		{"port 80 and (host 10.0.0.1) or 443", "port 80 and host 10.0.0.1 or port 443"},
		{"src or dst host 10.0.0.1", "host 10.0.0.1"},
		{"tcp[tcpflags] & tcp-syn != 0", "tcp[13] & 2 != 0"},
		{"icmp[icmptype] = icmp-echo", "icmp[0] = 8"},
		{"ip[0x10:4] = 010", "ip[16:4] = 8"},
		{"greater 100", "len >= 100"},
		{"less 100", "len <= 100"},
		{"net 10.0.0.0/8", "net 10.0.0.0 mask 255.0.0.0"},
		{"net 10", "net 10.0.0.0/8"},
		{"net 0x0a", "net 10.0.0.0/8"},
		{"net 256", "net 1.0.0.0/16"},
		{"host 10.1", "net 10.1.0.0/16"},
		{"host 010.1", "net 10.1"},
		{"src 167772161", "src host 10.0.0.1"},
		{"host 0x0a000001", "host 10.0.0.1"},
		{"ether src 00:11:22:33:44:55", "ether src host 00-11-22-33-44-55"},
		{"ip[2 + 2 * 3] = 1 << 4", "ip[8] = 16"},
		{"ip[8] > 1 | 2 ^ 3", "ip[8] > 1"},
	}
	for _, tt := range tests {
		t.Run(tt[0], func(t *testing.T) {
			t.Parallel()
			a, err := Compile(tt[0], packet.LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Compile(tt[1], packet.LinkEthernet)
			if err != nil {
				t.Fatal(err)
			}
			if a.String() != b.String() {
				t.Errorf("%q compiles to\n%v\n%q to\n%v", tt[0], a, tt[1], b)
			}
		})
	}
}

// TestCompileRawIP checks programs for raw-IP links, whose frames start
// with the IP header, under sockfilter.Program.TestLink, which gives the kernel's test
// run an Ethernet header in front of the frame: the program reads from the
// network header, where the frame starts, as on a raw-IP packet socket.
func TestCompileRawIP(t *testing.T) {
	testutil.RequirePrivileged(t)
	lp := testutil.NewLibpcap(t, testutil.LinkRawIP)
	exprs := []string{"ip", "ip6", "tcp", "udp port 53", "host 10.0.0.1", "tcp[13] & 2 != 0",
		"ip6 and tcp port 80", "net 10.0.0.0/8 and not icmp", "len > 60", "arp or ip[8] < 64"}
	var frames [][]byte
	for _, f := range testutil.GenFrames(2, 3000) {
		// Untagged IPv4 and IPv6 frames, less their Ethernet header.
		if et := uint16(f[12])<<8 | uint16(f[13]); (et == 0x0800 || et == 0x86dd) && len(f) >= 14+15 {
			frames = append(frames, f[14:])
		}
	}
	for _, expr := range exprs {
		t.Run(expr, func(t *testing.T) {
			classic, err := lp.Compile(expr)
			if err != nil {
				t.Fatal(err)
			}
			vm := testutil.ClassicVM(t, classic)
			insns, err := Compile(expr, packet.LinkRawIP)
			if err != nil {
				t.Fatal(err)
			}
			prog := loadForTest(t, insns, func() (*sockfilter.Program, error) { return sockfilter.Load(insns, nil) })
			matched := 0
			for i, f := range frames {
				want := vm(f) != 0
				got, err := prog.Test(f, packet.LinkRawIP)
				if err != nil {
					continue // too short for the kernel's test run
				}
				if (got != 0) == want {
					matched++
				} else {
					t.Errorf("frame %d (% x): got %#x, libpcap accepts: %v", i, f, got, want)
				}
			}
			t.Logf("%d of %d matched", matched, len(frames))
			if matched < len(frames)/2 {
				t.Errorf("only %d of %d frames could be tested", matched, len(frames))
			}
		})
	}
}

func ExampleCompile() {
	insns, err := Compile("tcp dst port 80 and tcp[tcpflags] & tcp-syn != 0", packet.LinkEthernet)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(insns), "instructions")
	_, err = Compile("tcp port http or https", packet.LinkEthernet)
	fmt.Println(err)
	_, err = CompileWith("host example.com", packet.LinkEthernet, &CompileOptions{NoResolve: true})
	fmt.Println(err)
	// Output:
	// 18 instructions
	// <nil>
	// compile "host example.com": host name "example.com" is not resolved: CompileOptions.NoResolve is set, use an address at column 6
}
