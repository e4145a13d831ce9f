package sockfilter

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The test frames live in testdata/frames/NAME.hex, one frame a file, as
// hex with one header per line and a comment saying what it holds. Their
// checksums are correct; record_tshark_test.go checks what tshark makes of
// them. Frames named raw_* are LinkRawIP, the others LinkEthernet. The
// benchmark in internal/bench reads the same files.

// testFrame is a frame from testdata/frames.
type testFrame struct {
	name string
	link LinkType
	data []byte
}

// decodeHexFrame decodes a testdata/frames file: hex digits, with white
// space and #-comments ignored.
func decodeHexFrame(text string) ([]byte, error) {
	var digits strings.Builder
	for line := range strings.Lines(text) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return hex.DecodeString(digits.String())
}

// loadFrames returns all the frames in testdata/frames, by name.
func loadFrames(t testing.TB) []testFrame {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "frames", "*.hex"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test frames in testdata/frames: %v", err)
	}
	var frames []testFrame
	for _, p := range paths {
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		data, err := decodeHexFrame(string(text))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".hex")
		link := LinkEthernet
		if strings.HasPrefix(name, "raw_") {
			link = LinkRawIP
		}
		frames = append(frames, testFrame{name: name, link: link, data: data})
	}
	return frames
}

// loadFrame returns the named frame from testdata/frames.
func loadFrame(t testing.TB, name string) testFrame {
	t.Helper()
	for _, f := range loadFrames(t) {
		if f.name == name {
			return f
		}
	}
	t.Fatalf("no test frame %q", name)
	return testFrame{}
}

// frameCopy returns a copy of the named frame's bytes, to modify.
func frameCopy(t testing.TB, name string) []byte {
	t.Helper()
	return append([]byte(nil), loadFrame(t, name).data...)
}

func TestDecodeHexFrame(t *testing.T) {
	got, err := decodeHexFrame("# comment\n0a0b 0c # ethernet\n\n0d\n")
	if err != nil || fmt.Sprintf("%x", got) != "0a0b0c0d" {
		t.Fatalf("decodeHexFrame = %x, %v; want 0a0b0c0d, nil", got, err)
	}
	if _, err := decodeHexFrame("0a0"); err == nil {
		t.Fatal("decodeHexFrame accepted an odd number of digits")
	}
}
