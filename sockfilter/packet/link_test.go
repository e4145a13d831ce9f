package packet

import (
	"testing"
)

func TestDirection(t *testing.T) {
	t.Parallel()
	for pkttype, want := range []string{"host", "broadcast", "multicast", "otherhost", "outgoing", "unknown"} {
		d := Direction(pkttype + 1) // the kernel's PACKET_* plus one
		if d.String() != want {
			t.Errorf("pkttype %d: %q, want %q", pkttype, d, want)
		}
		if d.Incoming() != (pkttype <= 3) {
			t.Errorf("pkttype %d: Incoming() = %v", pkttype, d.Incoming())
		}
	}
	if DirectionUnknown.String() != "unknown" {
		t.Error("zero Direction is not unknown")
	}
}

func TestLinkTypeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		l          LinkType
		name, desc string
	}{
		{LinkEthernet, "EN10MB", "Ethernet"},
		{LinkRawIP, "RAW", "Raw IP"},
		{LinkType(7), "LinkType(7)", "unknown"},
	}
	for _, tc := range tests {
		if tc.l.String() != tc.name || tc.l.Description() != tc.desc {
			t.Errorf("%d: %q %q, want %q %q", tc.l, tc.l, tc.l.Description(), tc.name, tc.desc)
		}
	}
	fi := Info{VLANTCI: 0xe123}
	if fi.VLANID() != 0x123 {
		t.Errorf("VLANID %#x", fi.VLANID())
	}
}
