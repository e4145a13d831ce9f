package testutil

import (
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The test frames live in testdata/frames/NAME.hex at the top of the
// module, one frame a file, as hex with one header per line and a comment
// saying what it holds. Their checksums are correct; the packet package's
// tshark test checks what tshark makes of them. Frames named raw_* are raw
// IP (LINKTYPE_RAW), sll_* and sll2_* start with a Linux cooked capture
// header (LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2), the others are
// Ethernet. A frame captured short of its length on the wire, as with
// tcpdump -s 60, says how long it was in a comment line
// "# wire length: N". The benchmarks in internal/bench read the same
// files.

// Pcap link-type numbers of the test frames, as packet.LinkType has them.
const (
	LinkEthernet  = 1
	LinkRawIP     = 101
	LinkLinuxSLL  = 113
	LinkLinuxSLL2 = 276
)

// Frame is a frame from testdata/frames.
type Frame struct {
	Name string
	Link uint16 // LinkEthernet, LinkRawIP, LinkLinuxSLL or LinkLinuxSLL2
	Data []byte
	// Length is the frame's length on the wire: len(Data), or more for
	// a frame the capture cut short.
	Length int
}

// Truncated reports whether the frame was captured short of its length
// on the wire.
func (f Frame) Truncated() bool { return f.Length > len(f.Data) }

// wireLengthPrefix starts the comment line that gives the wire length of
// a frame captured short.
const wireLengthPrefix = "# wire length: "

// wireLength returns the wire length a frame file gives, or 0.
func wireLength(text string) (int, error) {
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, wireLengthPrefix); ok {
			return strconv.Atoi(strings.TrimSpace(rest))
		}
	}
	return 0, nil
}

// RootDir returns the directory of the module's go.mod, where testdata/
// is, from this file's path (the tests run with their sources present).
func RootDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testutil: cannot find its own source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Testdata returns the path of name under the module's testdata/.
func Testdata(t testing.TB, name ...string) string {
	t.Helper()
	return filepath.Join(append([]string{RootDir(t), "testdata"}, name...)...)
}

// DecodeHexFrame decodes a testdata/frames file: hex digits, with white
// space and #-comments ignored.
func DecodeHexFrame(text string) ([]byte, error) {
	var digits strings.Builder
	for line := range strings.Lines(text) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return hex.DecodeString(digits.String())
}

// Frames returns all the frames in testdata/frames, sorted by name.
func Frames(t testing.TB) []Frame {
	t.Helper()
	paths, err := filepath.Glob(Testdata(t, "frames", "*.hex"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test frames in testdata/frames: %v", err)
	}
	var frames []Frame
	for _, p := range paths {
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		data, err := DecodeHexFrame(string(text))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".hex")
		link := uint16(LinkEthernet)
		switch {
		case strings.HasPrefix(name, "raw_"):
			link = LinkRawIP
		case strings.HasPrefix(name, "sll_"):
			link = LinkLinuxSLL
		case strings.HasPrefix(name, "sll2_"):
			link = LinkLinuxSLL2
		}
		wire, err := wireLength(string(text))
		if err != nil || (wire != 0 && wire <= len(data)) {
			t.Fatalf("%s: bad %q line (%v): a frame captured whole has none", p, wireLengthPrefix, err)
		}
		frames = append(frames, Frame{Name: name, Link: link, Data: data, Length: max(wire, len(data))})
	}
	return frames
}

// NamedFrame returns the named frame from testdata/frames.
func NamedFrame(t testing.TB, name string) Frame {
	t.Helper()
	for _, f := range Frames(t) {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no test frame %q", name)
	return Frame{}
}

// FrameCopy returns a copy of the named frame's bytes, to modify.
func FrameCopy(t testing.TB, name string) []byte {
	t.Helper()
	return append([]byte(nil), NamedFrame(t, name).Data...)
}

// Expressions returns the filter expressions of testdata/expressions.txt,
// one a line; blank lines and lines starting with # are skipped.
func Expressions(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile(Testdata(t, "expressions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		exprs = append(exprs, line)
	}
	return exprs
}

// FramesOf returns the frames of testdata/frames of one link type
// (LinkEthernet, LinkRawIP, LinkLinuxSLL or LinkLinuxSLL2).
func FramesOf(t testing.TB, link uint16) []Frame {
	t.Helper()
	var frames []Frame
	for _, f := range Frames(t) {
		if f.Link == link {
			frames = append(frames, f)
		}
	}
	return frames
}

// CaptureStdout runs fn with os.Stdout redirected to a pipe and returns
// what it wrote, as go test does for an Example's output.
func CaptureStdout(t testing.TB, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	stdout := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = stdout }()
	fn()
	os.Stdout = stdout
	w.Close()
	s := <-out
	r.Close()
	return s
}
