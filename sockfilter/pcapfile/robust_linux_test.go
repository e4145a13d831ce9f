package pcapfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// TestWriterFullTmpfs writes packets to a file on a 60 KiB tmpfs until
// the disk is full, in both formats, writing each record out and
// buffering them, and checks that the Writer reports ENOSPC, that the file
// is Written bytes long, cut back to its last whole record, and that
// tcpdump -r (and for pcapng capinfos and tshark) reads it to its end
// without a "truncated dump file" complaint, as many packets as the Reader.
func TestWriterFullTmpfs(t *testing.T) {
	t.Parallel()
	testutil.RequirePrivileged(t)
	mount := lookPcapTool(t, "mount")
	frames := testutil.FramesOf(t, testutil.LinkEthernet)
	for _, format := range []Format{FormatPcap, FormatPcapng} {
		for _, buffer := range []int{0, 8 << 10} {
			t.Run(fmt.Sprintf("%v buffer %d", format, buffer), func(t *testing.T) {
				dir := t.TempDir()
				if out, err := exec.Command(mount, "-t", "tmpfs", "-o", "size=60k,mode=0700", "purebpf-test", dir).CombinedOutput(); err != nil {
					t.Skipf("mount a tmpfs: %v: %s", err, out)
				}
				t.Cleanup(func() {
					if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
						t.Errorf("umount %s: %v: %s", dir, err, out)
					}
				})
				path := filepath.Join(dir, "full."+format.String())
				f, err := os.Create(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				pw, err := newTestWriter(t, format, f)
				if err != nil {
					t.Fatal(err)
				}
				if err := pw.SetBufferSize(buffer); err != nil {
					t.Fatal(err)
				}
				ok := 0
				for i := 0; err == nil; i++ {
					fr := frames[i%len(frames)]
					if i > 10000 {
						t.Fatal("60 KiB of tmpfs holds 10000 packets")
					}
					if err = pw.WritePacket(fr.Data, &packet.Info{Time: frameTime(i), Length: fr.Length}); err == nil {
						ok++
					}
				}
				if !errors.Is(err, syscall.ENOSPC) || pw.Flush() != err {
					t.Fatalf("after %d packets: %v, want ENOSPC, sticky", ok, err)
				}
				t.Logf("after %d packets: %v", ok, err)
				st, serr := f.Stat()
				if serr != nil || st.Size() != pw.Written() {
					t.Fatalf("file of %d bytes (%v), Written %d", st.Size(), serr, pw.Written())
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}

				n := countPackets(t, path)
				if buffer == 0 && n != ok {
					t.Errorf("the Reader reads %d packets, %d were written", n, ok)
				}
				if n == 0 || n > ok {
					t.Errorf("the Reader reads %d packets of the %d written", n, ok)
				}
				var stderr strings.Builder
				out := runTool(t, &stderr, "tcpdump", "-r", path, "-nn")
				if lines := strings.Count(out, "\n") - strings.Count(out, "\n\t"); lines != n || strings.Contains(stderr.String(), "truncated") {
					t.Errorf("tcpdump: %d packets, the Reader %d; it says: %s", lines, n, stderr.String())
				}
				if format == FormatPcapng {
					info := runTool(t, nil, "capinfos", path)
					if !strings.Contains(info, fmt.Sprintf("Number of packets:   %d\n", n)) {
						t.Errorf("capinfos:\n%s", info)
					}
					if out := runTool(t, nil, "tshark", "-r", path, "-T", "fields", "-e", "frame.number"); strings.Count(out, "\n") != n {
						t.Errorf("tshark reads %d packets, the Reader %d", strings.Count(out, "\n"), n)
					}
				}
			})
		}
	}
}

// countPackets reads a capture file to its end, which must be clean.
func countPackets(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, err := NewReader(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var buf []byte
	for {
		if buf, err = pr.ReadPacket(buf, new(packet.Info)); err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("packet %d: %v", n, err)
		}
		n++
	}
}
