package main

import (
	"context"
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
// frame of the capture benchmark's flood: the pcap record of -w, and with
// --print (or without -w) the table line or JSON line too, into their
// buffers, written out to nowhere. The capture benchmark's lo-capture-pcap
// mode pays the first on top of the minimal ring reader
// (internal/bench/capture/minimal), which writes the pcap record alone.
func BenchmarkFramePath(b *testing.B) {
	info := packet.Info{Time: time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC), Ifindex: 1, Length: len(udpFrame)}
	for _, mode := range []string{"pcap", "text+pcap", "json+pcap"} {
		b.Run(mode, func(b *testing.B) {
			s := newStreamWriter(io.Discard, textChunks, textChunk)
			opts := &options{json: mode == "json+pcap"}
			out, err := newRecordWriter(context.Background(), s, opts, packet.LinkEthernet)
			if err != nil {
				b.Fatal(err)
			}
			pw, err := pcapfile.NewWriter(io.Discard, packet.LinkEthernet, pcapfile.DefaultSnaplen)
			if err != nil {
				b.Fatal(err)
			}
			if err := pw.SetBufferSize(saveBuffer); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				info.Time = info.Time.Add(1800 * time.Nanosecond) // 550,000 frames a second
				if err := pw.WritePacket(udpFrame, &info); err != nil {
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

// collect runs a recordWriter for opts over frames and returns what it
// wrote.
func collect(t *testing.T, opts *options, link packet.LinkType, frames [][]byte, infos []packet.Info) string {
	t.Helper()
	var sb strings.Builder
	s := newStreamWriter(&sb, 2, textChunk)
	rw, err := newRecordWriter(context.Background(), s, opts, link)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if err := rw.Write(f, &infos[i]); err != nil {
			t.Fatal(err)
		}
	}
	rw.finish()
	if err := s.closeWait(nil, nil); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// TestRecordWriter checks the table and the JSON lines recordWriter writes
// for the benchmark's frame against AppendLine and AppendJSON.
func TestRecordWriter(t *testing.T) {
	info := packet.Info{Time: time.Date(2026, 12, 1, 18, 0, 0, 5, time.UTC), Ifindex: 1, Length: len(udpFrame)}
	var r packet.Record
	if err := packet.Parse(udpFrame, packet.LinkEthernet, &info, &r); err != nil {
		t.Fatal(err)
	}
	line := string(r.AppendLine(nil))
	if !strings.HasPrefix(line, "127.0.0.1\t40000\t127.0.0.1\t31337\tUDP\t2026-12-01T18:00:00.000000005Z\t106\t106\t") {
		t.Fatalf("AppendLine = %q", line)
	}
	frames := [][]byte{udpFrame, udpFrame, udpFrame}
	infos := []packet.Info{info, info, info}
	for _, json := range []bool{false, true} {
		got := collect(t, &options{json: json}, packet.LinkEthernet, frames, infos)
		want := packet.TextHeader + strings.Repeat(line, 3)
		if json {
			want = strings.Repeat(string(r.AppendJSON(nil)), 3)
		}
		if got != want {
			t.Errorf("json %v: wrote\n%q\nwant\n%q", json, got, want)
		}
	}
	// An empty capture still prints the header.
	if got := collect(t, &options{}, packet.LinkEthernet, nil, nil); got != packet.TextHeader {
		t.Errorf("empty capture wrote %q, want the header", got)
	}
}
