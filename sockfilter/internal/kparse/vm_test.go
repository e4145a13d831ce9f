package kparse

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// vmMaps are Go stand-ins for a program's maps, for its runs in the VM:
// the records a ring buffer or perf buffer received, one CPU's counters,
// and a flow table.
type vmMaps struct {
	records  [][]byte
	counters []byte
	flows    map[string][]byte
}

// The file descriptors the VM's programs give their maps.
const (
	vmRecords  = 101
	vmCounters = 102
	vmFlows    = 103
)

func newVMMaps() *vmMaps {
	return &vmMaps{counters: make([]byte, FlowCountersSize), flows: map[string][]byte{}}
}

// program returns insns with the maps named by the fds of the stand-ins.
func (m *vmMaps) program(insns asm.Instructions) asm.Instructions {
	out := append(asm.Instructions(nil), insns...)
	fds := map[string]int64{MapRecords: vmRecords, MapCounters: vmCounters, MapFlows: vmFlows}
	for i := range out {
		if name := out[i].Map; name != "" {
			out[i].Constant, out[i].Map = fds[name], ""
		}
	}
	return out
}

// helpers returns the map helpers the programs call, on the stand-ins.
func (m *vmMaps) helpers() map[asm.HelperFunc]vm.Helper {
	mapOf := func(e *vm.Env, r uint64) (uint32, error) {
		if _, fd, ok := e.Object(r); ok {
			return fd, nil
		}
		return 0, fmt.Errorf("not a map: %#x", r)
	}
	output := func(e *vm.Env, data, size uint64) (uint64, error) {
		b, err := e.Memory(data, size, false)
		if err != nil {
			return 0, err
		}
		m.records = append(m.records, append([]byte(nil), b...))
		return 0, nil
	}
	const eexist = 17
	return map[asm.HelperFunc]vm.Helper{
		asm.FnMapLookupElem: func(e *vm.Env, r1, r2, _, _, _ uint64) (uint64, error) {
			fd, err := mapOf(e, r1)
			if err != nil {
				return 0, err
			}
			if fd == vmCounters {
				return e.Expose(m.counters, true)
			}
			key, err := e.Memory(r2, FlowKeySize, false)
			if err != nil {
				return 0, err
			}
			v, ok := m.flows[string(key)]
			if !ok {
				return 0, nil
			}
			return e.Expose(v, true)
		},
		asm.FnMapUpdateElem: func(e *vm.Env, r1, r2, r3, r4, _ uint64) (uint64, error) {
			key, err := e.Memory(r2, FlowKeySize, false)
			if err != nil {
				return 0, err
			}
			value, err := e.Memory(r3, FlowValueSize, false)
			if err != nil {
				return 0, err
			}
			if _, ok := m.flows[string(key)]; ok && r4 == bpfNoExist {
				return uint64(1<<64 - eexist), nil
			}
			m.flows[string(key)] = append([]byte(nil), value...)
			return 0, nil
		},
		asm.FnRingbufOutput: func(e *vm.Env, _, r2, r3, _, _ uint64) (uint64, error) {
			return output(e, r2, r3)
		},
		asm.FnRingbufQuery: func(*vm.Env, uint64, uint64, uint64, uint64, uint64) (uint64, error) {
			return 0, nil
		},
		asm.FnPerfEventOutput: func(e *vm.Env, _, _, _, r4, r5 uint64) (uint64, error) {
			return output(e, r4, r5)
		},
	}
}

// newVM prepares the program in the VM, with the stand-ins' helpers.
func (m *vmMaps) newVM(t testing.TB, insns asm.Instructions) *vm.VM {
	t.Helper()
	v, err := vm.New(m.program(insns), &vm.Options{Kernel: true, Helpers: m.helpers()})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// acceptAll is a filter that keeps every frame.
var acceptAll = asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1), asm.Mov.Imm(asm.R0, -1), asm.Exit()}

// vmRecord runs the live socket's record program on frame as the socket
// that says info about it, and returns the record it wrote.
func vmRecord(t testing.TB, v *vm.VM, m *vmMaps, frame []byte, link packet.LinkType, info *packet.Info) (packet.Record, packet.Info) {
	t.Helper()
	m.records = m.records[:0]
	ret, err := v.RunFrameInfo(frame, link, info)
	if err != nil {
		t.Fatalf("% x: %v", frame, err)
	}
	if ret != 0 || len(m.records) != 1 {
		t.Fatalf("% x: returned %d with %d records", frame, ret, len(m.records))
	}
	var r packet.Record
	var gotInfo packet.Info
	if err := Decode(m.records[0], Clock{}, &r, &gotInfo); err != nil {
		t.Fatal(err)
	}
	return r, gotInfo
}

// vmInfos are what the VM's socket says of a frame: a direction (a
// socket buffer always has a pkt_type), and then an interface, another
// direction and a tag the device removed.
var vmInfos = []packet.Info{
	{Direction: packet.DirectionHost},
	{Ifindex: 4, Direction: packet.DirectionOutgoing, HasVLAN: true, VLANTCI: 3<<13 | 77, VLANTPID: 0x88a8},
}

// TestRecordsVM runs the record program a live socket runs, in the VM,
// on the corpus, generated frames and every prefix of a few, as seen by
// sockets that say different things of them, and compares each record
// with packet.Parse's with the same Info: 0 differences, without root.
func TestRecordsVM(t *testing.T) {
	t.Parallel()
	frames, links := corpus(t)
	for i, n := 0, len(frames); i < n; i += 50 {
		for k := 1; k < len(frames[i]); k++ {
			frames = append(frames, frames[i][:k])
			links = append(links, links[i])
		}
	}
	for _, perf := range []bool{false, true} {
		for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
			m := newVMMaps()
			insns, err := Records(acceptAll, &RecordOptions{Options: Options{Link: link, Clock: asm.FnKtimeGetTaiNs}, Perf: perf, Watermark: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			v := m.newVM(t, insns)
			diffs := 0
			for i, frame := range frames {
				if links[i] != link {
					continue
				}
				for _, info := range vmInfos {
					info.Length = len(frame)
					got, gotInfo := vmRecord(t, v, m, frame, link, &info)
					var want packet.Record
					packet.Parse(frame, link, &info, &want)
					got.Time, want.Time, gotInfo.Time = time.Time{}, time.Time{}, time.Time{}
					if got != want || gotInfo != info {
						diffs++
						if diffs <= 10 {
							t.Errorf("%v frame % x, %+v:\n got %+v %+v\nwant %+v", link, frame, info, got, gotInfo, want)
						}
					}
				}
			}
			if diffs != 0 {
				t.Errorf("%v, perf %v: %d records differ from Parse's", link, perf, diffs)
			}
		}
	}
}

// TestFlowsVM runs the flow program a live socket runs, in the VM, shared
// and per CPU, on the corpus twice, and compares the table with what
// KeyOf and Counters.Add make of Parse's records, with the same Infos.
func TestFlowsVM(t *testing.T) {
	t.Parallel()
	frames, links := corpus(t)
	for _, perCPU := range []bool{false, true} {
		for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
			m := newVMMaps()
			insns, err := Flows(acceptAll, &FlowOptions{Options: Options{Link: link, Clock: asm.FnKtimeGetCoarseNs}, PerCPU: perCPU})
			if err != nil {
				t.Fatal(err)
			}
			v := m.newVM(t, insns)
			want := map[flow.Key]flow.Counters{}
			packets := 0
			for i, frame := range frames {
				if links[i] != link {
					continue
				}
				for _, info := range vmInfos {
					info.Length = len(frame)
					for range 2 {
						if ret, err := v.RunFrameInfo(frame, link, &info); err != nil || ret != 0 {
							t.Fatal(ret, err)
						}
						packets++
						var r packet.Record
						packet.Parse(frame, link, &info, &r)
						k := flow.KeyOf(&r)
						c := want[k]
						c.Packets++
						c.Bytes += uint64(r.Length)
						c.TCPFlags |= r.TCPFlags
						want[k] = c
					}
				}
			}
			if len(m.flows) != len(want) {
				t.Errorf("%v per CPU %v: %d flows, KeyOf makes %d", link, perCPU, len(m.flows), len(want))
			}
			for kb, vb := range m.flows {
				k, err := DecodeKey([]byte(kb))
				if err != nil {
					t.Fatal(err)
				}
				var c flow.Counters
				if _, err := DecodeValue(vb, 1, Clock{}, &c); err != nil {
					t.Fatal(err)
				}
				if w := want[k]; c.Packets != w.Packets || c.Bytes != w.Bytes || c.TCPFlags != w.TCPFlags {
					t.Errorf("flow %v: %d packets, %d bytes, %v; KeyOf %d, %d, %v", k, c.Packets, c.Bytes, c.TCPFlags, w.Packets, w.Bytes, w.TCPFlags)
				}
			}
			if n := binary.NativeEndian.Uint64(m.counters[CounterPackets:]); n != uint64(packets) {
				t.Errorf("the totals count %d packets of %d", n, packets)
			}
		}
	}
}

// FuzzRecordsVM runs the live socket's record program in the VM on
// arbitrary frames: its record must be Parse's.
func FuzzRecordsVM(f *testing.F) {
	frames, links := corpus(f)
	for i := 0; i < len(frames); i += 5 {
		if links[i] == packet.LinkEthernet {
			f.Add(frames[i], false)
		} else {
			f.Add(frames[i], true)
		}
	}
	m := newVMMaps()
	vms := map[bool]*vm.VM{}
	for _, raw := range []bool{false, true} {
		link := packet.LinkEthernet
		if raw {
			link = packet.LinkRawIP
		}
		insns, err := Records(acceptAll, &RecordOptions{Options: Options{Link: link, Clock: asm.FnKtimeGetTaiNs}})
		if err != nil {
			f.Fatal(err)
		}
		vms[raw] = m.newVM(f, insns)
	}
	f.Fuzz(func(t *testing.T, frame []byte, raw bool) {
		if len(frame) == 0 || len(frame) > 1<<16 {
			return
		}
		link := packet.LinkEthernet
		if raw {
			link = packet.LinkRawIP
		}
		info := packet.Info{Ifindex: 1, Direction: packet.DirectionHost, Length: len(frame)}
		got, _ := vmRecord(t, vms[raw], m, frame, link, &info)
		var want packet.Record
		packet.Parse(frame, link, &info, &want)
		got.Time, want.Time = time.Time{}, time.Time{}
		if got != want {
			t.Fatalf("%v frame % x:\n got %+v\nwant %+v", link, frame, got, want)
		}
	})
}
