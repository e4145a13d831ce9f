package main

import (
	"bufio"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
)

// udpFrame is what the capture benchmark floods lo with: an Ethernet frame
// holding a UDP datagram of 64 bytes, 127.0.0.1:40000 > 127.0.0.1:31337.
var udpFrame = mustHex(strings.Join([]string{
	"000000000000", "000000000000", "0800", // Ethernet: dst, src, IPv4
	"4500005c", "12344000", "40110000", "7f000001", "7f000001", // IPv4, 92 bytes, DF, TTL 64, UDP
	"9c407a69", "00480000", // UDP 40000 > 31337, 72 bytes
	strings.Repeat("ab", 64),
}, ""))

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkFramePath measures what lo-capture does in user space for each
// frame of the capture benchmark's flood with -w: the table line and the
// pcap record, written through their buffers to io.Discard. The capture
// benchmark's lo-capture-pcap mode pays this on top of the minimal ring
// reader (internal/bench/capture/minimal), which writes the pcap record
// alone.
func BenchmarkFramePath(b *testing.B) {
	info := packet.Info{Time: time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC), Ifindex: 1, Length: len(udpFrame)}
	for _, mode := range []string{"pcap", "text+pcap", "json+pcap"} {
		b.Run(mode, func(b *testing.B) {
			out := newRecordWriter(io.Discard, mode == "json+pcap", packet.LinkEthernet)
			bw := bufio.NewWriterSize(io.Discard, 1<<20)
			pw, err := pcapfile.NewWriter(bw, packet.LinkEthernet, pcapfile.DefaultSnaplen)
			if err != nil {
				b.Fatal(err)
			}
			p := &pcapOutput{bw: bw, pw: pw}
			b.ReportAllocs()
			for b.Loop() {
				info.Time = info.Time.Add(1800 * time.Nanosecond) // 550,000 frames a second
				if err := p.pw.WritePacket(udpFrame, &info); err != nil {
					b.Fatal(err)
				}
				if mode == "pcap" {
					continue
				}
				if err := out.Write(udpFrame, &info); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRecordWriter checks the table and the JSON lines recordWriter writes
// for the benchmark's frame against AppendLine and AppendJSON.
func TestRecordWriter(t *testing.T) {
	info := packet.Info{Time: time.Date(2026, 12, 1, 18, 0, 0, 5, time.UTC), Ifindex: 1, Length: len(udpFrame)}
	var r packet.Record
	if err := packet.Parse(udpFrame, packet.LinkEthernet, &info, &r); err != nil {
		t.Fatal(err)
	}
	const want = "127.0.0.1\t40000\t127.0.0.1\t31337\tUDP\t2026-12-01T18:00:00.000000005Z\t106\t106\tlength 64\n"
	if got := string(r.AppendLine(nil)); got != want {
		t.Fatalf("AppendLine = %q, want %q", got, want)
	}
	for _, json := range []bool{false, true} {
		var sb strings.Builder
		rw := newRecordWriter(&sb, json, packet.LinkEthernet)
		for range 3 {
			if err := rw.Write(udpFrame, &info); err != nil {
				t.Fatal(err)
			}
		}
		if err := rw.Flush(); err != nil {
			t.Fatal(err)
		}
		line := string(r.AppendJSON(nil))
		if !json {
			line = want
		}
		exp := strings.Repeat(line, 3)
		if !json {
			exp = packet.TextHeader + exp
		}
		if sb.String() != exp {
			t.Errorf("json %v: wrote\n%q\nwant\n%q", json, sb.String(), exp)
		}
	}
}
