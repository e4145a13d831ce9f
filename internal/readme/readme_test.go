// Package readme checks what README.md claims that a test can check: that
// its Go programs build, and that the figures it quotes without a command
// that produces them are what the code gives.
package readme

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RootDir(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// goBlocks returns README's ```go blocks.
func goBlocks(text string) []string {
	var blocks []string
	for {
		_, rest, ok := strings.Cut(text, "```go\n")
		if !ok {
			return blocks
		}
		block, after, _ := strings.Cut(rest, "```")
		blocks = append(blocks, block)
		text = after
	}
}

// TestReadmeProgramsBuild builds and vets every complete program in
// README.md (a ```go block that starts with package main) against this
// module.
func TestReadmeProgramsBuild(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	root := testutil.RootDir(t)
	n := 0
	for i, block := range goBlocks(readme(t)) {
		if !strings.HasPrefix(block, "package main") {
			continue
		}
		n++
		// A directory inside the module, so that the program's imports
		// resolve to this tree.
		dir, err := os.MkdirTemp(filepath.Join(root, "internal", "readme"), "prog")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(block), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"build", "-o", os.DevNull, "."}, {"vet", "."}} {
			cmd := exec.Command("go", args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("README program %d: go %s: %v\n%s\n%s", i+1, strings.Join(args, " "), err, out, block)
			}
		}
	}
	if n == 0 {
		t.Fatal("no complete program in README.md")
	}
}

// TestReadmeStartLine checks the instruction count README's example of
// lo-capture's start line gives.
func TestReadmeStartLine(t *testing.T) {
	m := regexp.MustCompile(`filter "([^"]+)", (\d+)\s+instructions`).FindStringSubmatch(readme(t))
	if m == nil {
		t.Fatal("README.md has no start line example")
	}
	insns, err := pcapfilter.Compile(m[1], packet.LinkEthernet)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := strconv.Atoi(m[2]); insns.Slots() != want {
		t.Errorf("README says %q compiles to %d instructions; it compiles to %d", m[1], want, insns.Slots())
	}
}
