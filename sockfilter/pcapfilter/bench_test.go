package pcapfilter

import (
	"strconv"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// hugeShapes are expression shapes that grow with a number of terms n:
// each returns the expression of n terms. They are the shapes of issue
// 11's stress campaign: arithmetic chains, long `or` chains of ports and
// hosts, deep parentheses and `not` chains.
var hugeShapes = []struct {
	name string
	expr func(n int) string
}{
	{"arith_add", func(n int) string { return "len = len" + strings.Repeat(" + len", n-1) }},
	{"arith_div", func(n int) string { return "len = len" + strings.Repeat(" / len", n-1) }},
	{"tcp_or_arith", func(n int) string { return "tcp or len = len" + strings.Repeat(" + len", n-1) }},
	{"ports", func(n int) string { return chain(n, func(i int) string { return "port " + strconv.Itoa(i%65536) }) }},
	{"hosts", func(n int) string {
		return chain(n, func(i int) string {
			return "host 10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
		})
	}},
	{"bytes", func(n int) string {
		return chain(n, func(i int) string { return "ip[" + strconv.Itoa(i%1500) + "] = " + strconv.Itoa(i%256) })
	}},
	{"mixed", func(n int) string {
		return chain(n, func(i int) string {
			return "(tcp port " + strconv.Itoa(i%65536) + " and not src net 10." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ".0/24)"
		})
	}},
	{"ranges", func(n int) string {
		return chain(n, func(i int) string { return "portrange " + strconv.Itoa(i%60000) + "-" + strconv.Itoa(i%60000+5) })
	}},
	{"vlans", func(n int) string {
		return chain(n, func(i int) string { return "vlan " + strconv.Itoa(i%4096) + " and udp" })
	}},
	{"groups", func(n int) string {
		return chain(n, func(int) string { return strings.Repeat("(", 150) + "tcp" + strings.Repeat(")", 150) })
	}},
	{"parens", func(n int) string { return strings.Repeat("(", n) + "tcp" + strings.Repeat(")", n) }},
	{"not", func(n int) string { return strings.Repeat("not ", n) + "tcp" }},
	{"keyword", func(n int) string { return strings.Repeat("x", n) }},
}

// chain returns term(0) or term(1) ... or term(n-1).
func chain(n int, term func(i int) string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString(term(i))
	}
	return b.String()
}

// BenchmarkCompileHuge compiles each shape at 1k, 10k and 100k terms.
// Whether Compile gives a program or refuses the expression, it must do
// so in time and memory linear in the expression's length.
//
//	go test -run '^$' -bench CompileHuge -benchtime 3x ./sockfilter/pcapfilter/
func BenchmarkCompileHuge(b *testing.B) {
	for _, s := range hugeShapes {
		for _, n := range []int{1000, 10000, 100000} {
			b.Run(s.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				expr := s.expr(n)
				b.ReportAllocs()
				b.SetBytes(int64(len(expr)))
				for b.Loop() {
					Compile(expr, packet.LinkEthernet)
				}
			})
		}
	}
}
