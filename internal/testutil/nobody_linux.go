package testutil

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// NobodyCommand returns a command that runs the executable at path as the
// user nobody (uid and gid 65534) with every capability dropped, through
// setpriv(1) from util-linux: how the tests check what purebpf says to a
// user without privileges. The executable is copied to a directory nobody
// can reach first, for go's build and test directories are private to
// root. Dropping privileges needs them, so the test must be privileged
// (see RequirePrivileged); without setpriv it is skipped, or fails under
// PUREBPF_PRIVILEGED=require.
func NobodyCommand(t testing.TB, path string, args ...string) *exec.Cmd {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		const hint = "setpriv(1) is needed to drop privileges: install util-linux"
		if os.Getenv(PrivilegedEnv) == "require" {
			t.Fatal(hint)
		}
		t.Skip(hint)
	}
	dir, err := os.MkdirTemp("", "purebpf-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(path))
	if err := copyExecutable(bin, path); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all", "--bounding-set=-all", bin}, args...)...)
	cmd.Dir = dir
	return cmd
}

func copyExecutable(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
