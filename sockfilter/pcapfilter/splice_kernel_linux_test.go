package pcapfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/sys"
	"github.com/purebpf/purebpf/internal/wire"
)

// Loading and running programs of the types a spliced filter lives in,
// for the tests: tc (SCHED_CLS), XDP and cgroup_skb run under
// BPF_PROG_TEST_RUN, raw tracepoints attach.

// loadTyped loads insns as a program of type typ, closing it at the end
// of t, and returns its fd; a refusal gives the verifier's log.
func loadTyped(t testing.TB, typ uint32, insns asm.Instructions) (int, error) {
	t.Helper()
	fd, err := loadProgram(typ, insns)
	if err == nil {
		t.Cleanup(func() { unix.Close(fd) })
	}
	return fd, err
}

// loadProgram loads insns as a program of type typ and returns its fd,
// which the caller closes; a refusal gives the verifier's log.
func loadProgram(typ uint32, insns asm.Instructions) (int, error) {
	code, err := insns.Assemble()
	if err != nil {
		return -1, fmt.Errorf("assemble: %w\n%v", err, insns)
	}
	attr := sys.ProgLoadAttr{
		ProgType: typ,
		InsnCnt:  uint32(len(code) / 8),
		Insns:    sys.SlicePointer(code),
		License:  sys.StringPointer("GPL"),
	}
	fd, err := sys.ProgLoad(&attr)
	if err != nil {
		log := make([]byte, 1<<22)
		attr.LogLevel, attr.LogSize, attr.LogBuf = sys.BPF_LOG_LEVEL1, uint32(len(log)), sys.SlicePointer(log)
		if fd2, err2 := sys.ProgLoad(&attr); err2 == nil {
			return fd2, nil // the first failure was transient
		}
		return -1, fmt.Errorf("load: %w\n%v\nverifier log (tail):\n%s", err, insns, logTail(unix.ByteSliceToString(log), 3000))
	}
	return fd, nil
}

func logTail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// spliceRun runs the program fd once on data under BPF_PROG_TEST_RUN and
// returns its return value.
func spliceRun(fd int, data []byte) (uint32, error) {
	attr := sys.ProgTestRunAttr{ProgFD: uint32(fd), DataSizeIn: uint32(len(data)), DataIn: sys.SlicePointer(data)}
	if err := sys.ProgTestRun(&attr); err != nil {
		return 0, err
	}
	return attr.Retval, nil
}

// errTooShort reports a test run the kernel refuses as too short: data
// shorter than an Ethernet header, or, for the socket buffer types, an
// IPv4 or IPv6 ethertype with less than the fixed header after it
// (bpf_prog_test_run_skb).
func errTooShort(err error, data []byte) bool {
	if !errors.Is(err, unix.EINVAL) {
		return false
	}
	if len(data) < wire.EthernetHeaderLen {
		return true
	}
	switch binary.BigEndian.Uint16(data[wire.EtherTypeOff:]) {
	case wire.EtherTypeIPv4:
		return len(data) < wire.EthernetHeaderLen+20
	case wire.EtherTypeIPv6:
		return len(data) < wire.EthernetHeaderLen+40
	}
	return false
}
