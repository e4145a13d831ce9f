package testutil

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The test frames live in testdata/frames/NAME.hex at the top of the
// module, one frame a file, as hex with one header per line and a comment
// saying what it holds. Their checksums are correct; the packet package's
// tshark test checks what tshark makes of them. Frames named raw_* are raw
// IP (LINKTYPE_RAW), the others Ethernet. The benchmarks in internal/bench
// read the same files.

// Pcap link-type numbers of the test frames, as packet.LinkType has them.
const (
	LinkEthernet = 1
	LinkRawIP    = 101
)

// Frame is a frame from testdata/frames.
type Frame struct {
	Name string
	Link uint16 // LinkEthernet or LinkRawIP
	Data []byte
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
		if strings.HasPrefix(name, "raw_") {
			link = LinkRawIP
		}
		frames = append(frames, Frame{Name: name, Link: link, Data: data})
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
// (LinkEthernet or LinkRawIP).
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
