//go:build linux

package sys

import (
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/purebpf/purebpf/internal/testutil"
	"golang.org/x/sys/unix"
)

// Hand-encoded programs, one 8-byte instruction a line, as the kernel reads
// them on a little-endian machine: opcode, dst|src<<4, offset, immediate.
var (
	// acceptAll returns 0xffffffff: keep the whole packet.
	acceptAll = []byte{
		0xb4, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, // w0 = -1
		0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
	}
	// lenOf returns skb->len: r0 = *(u32 *)(r1 + 0).
	lenOf = []byte{
		0x61, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r0 = *(u32 *)(r1 +0)
		0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
	}
	// noR0 exits without setting r0.
	noR0 = []byte{
		0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
	}
)

func load(t *testing.T, insns []byte, log []byte) (int, *ProgLoadAttr, error) {
	t.Helper()
	attr := &ProgLoadAttr{
		ProgType: BPF_PROG_TYPE_SOCKET_FILTER,
		InsnCnt:  uint32(len(insns) / 8),
		Insns:    SlicePointer(insns),
		License:  StringPointer("GPL"),
		ProgName: NewObjName("sys_test"),
	}
	if log != nil {
		attr.LogLevel = BPF_LOG_LEVEL1
		attr.LogSize = uint32(len(log))
		attr.LogBuf = SlicePointer(log)
	}
	fd, err := ProgLoad(attr)
	if err == nil {
		t.Cleanup(func() { unix.Close(fd) })
	}
	return fd, attr, err
}

func TestProgLoadInfoTestRun(t *testing.T) {
	testutil.RequirePrivileged(t)
	fd, _, err := load(t, lenOf, nil)
	if err != nil {
		t.Fatal(err)
	}

	var info ProgInfo
	if err := ObjGetInfoByFD(fd, &info); err != nil {
		t.Fatal(err)
	}
	if info.Type != BPF_PROG_TYPE_SOCKET_FILTER || info.ID == 0 || info.Name.String() != "sys_test" || !info.GPLCompatible() {
		t.Errorf("info: type %d id %d name %q gpl %v", info.Type, info.ID, info.Name, info.GPLCompatible())
	}
	if info.XlatedProgLen == 0 || info.LoadTime == 0 {
		t.Errorf("info: xlated %d bytes, load time %d", info.XlatedProgLen, info.LoadTime)
	}

	// The test run strips the 14-byte Ethernet header: skb->len is 50-14.
	frame := make([]byte, 50)
	frame[12], frame[13] = 0x08, 0x00 // EtherType IPv4
	run := ProgTestRunAttr{ProgFD: uint32(fd), DataSizeIn: uint32(len(frame)), DataIn: SlicePointer(frame), Repeat: 3}
	if err := ProgTestRun(&run); err != nil {
		t.Fatal(err)
	}
	if run.Retval != 36 {
		t.Errorf("retval %d, want 36", run.Retval)
	}
}

func TestProgLoadErrors(t *testing.T) {
	testutil.RequirePrivileged(t)
	t.Run("verifier", func(t *testing.T) {
		log := make([]byte, 4096)
		_, _, err := load(t, noR0, log)
		if !errors.Is(err, unix.EACCES) || !strings.HasPrefix(err.Error(), "bpf: ") {
			t.Fatalf("err = %v, want bpf: EACCES", err)
		}
		if got := unix.ByteSliceToString(log); !strings.Contains(got, "R0 !read_ok") {
			t.Errorf("log %q lacks R0 !read_ok", got)
		}
	})
	t.Run("log too small", func(t *testing.T) {
		// A valid program whose log does not fit fails with ENOSPC, and
		// log_true_size says what would have fitted.
		log := make([]byte, 8)
		_, attr, err := load(t, acceptAll, log)
		if !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("err = %v, want ENOSPC", err)
		}
		if attr.LogTrueSize <= 8 {
			t.Errorf("log_true_size %d", attr.LogTrueSize)
		}
		_, _, err = load(t, acceptAll, make([]byte, attr.LogTrueSize))
		if err != nil {
			t.Errorf("with log_true_size bytes: %v", err)
		}
	})
	t.Run("not a bpf fd", func(t *testing.T) {
		f, err := os.Open("/dev/null")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		var info ProgInfo
		if err := ObjGetInfoByFD(int(f.Fd()), &info); !errors.Is(err, unix.EINVAL) {
			t.Errorf("err = %v, want EINVAL", err)
		}
	})
}

func TestObjName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"abc", "abc"},
		{"0123456789abcdefgh", "0123456789abcde"},
	} {
		if got := NewObjName(tt.in).String(); got != tt.want {
			t.Errorf("NewObjName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if unsafe.Sizeof(ObjName{}) != 16 {
		t.Error("ObjName is not 16 bytes")
	}
}
