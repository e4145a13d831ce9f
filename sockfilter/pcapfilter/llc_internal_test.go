package pcapfilter

import "testing"

// TestParseDECnetAddr checks DECnet addresses as libpcap's __pcap_atodn
// reads them: area in the 6 high bits, node in the 10 low ones, the first
// two numbers of a dotted word, or a number cut to 16 bits.
func TestParseDECnetAddr(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint16
		ok   bool
	}{
		{"1.2", 1<<10 | 2, true},
		{"63.1023", 0xffff, true},
		{"64.1", 1, true},         // the area is cut to 6 bits
		{"1.1024", 1 << 10, true}, // the node to 10
		{"01.02", 1<<10 | 2, true},
		{"1.2.3", 1<<10 | 2, true},
		{"1.2.3.4", 1<<10 | 2, true},
		{"1025", 1025, true},
		{"0x401", 0x401, true},
		{"70000", 70000 & 0xffff, true},
		{"1.2.3.4.5", 0, false},
		{"1.", 0, false},
		{".2", 0, false},
		{"a.b", 0, false},
		{"1.0x2", 0, false},
		{"99999999999.1", 0, false},
		{"", 0, false},
	} {
		got, ok := parseDECnetAddr(tt.in)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("parseDECnetAddr(%q) = %#x, %v; want %#x, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
