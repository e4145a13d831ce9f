package testutil

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// toolPackages names the Debian package of each program RequireTool is
// asked for, for its hint.
var toolPackages = map[string]string{
	"nfcapd":    "nfdump",
	"nfdump":    "nfdump",
	"ipfixDump": "libfixbuf-tools",
	"tshark":    "tshark",
	"tcpdump":   "tcpdump",
}

// RequireTool skips t with a hint naming the package to install unless
// every program in names is on PATH. Under PUREBPF_PRIVILEGED=require,
// as in CI, which installs them, it fails instead: tests against outside
// tools need no privileges, but must not pass by skipping where they are
// meant to run.
func RequireTool(t testing.TB, names ...string) {
	t.Helper()
	var missing, pkgs []string
	for _, name := range names {
		if _, err := exec.LookPath(name); err == nil {
			continue
		}
		missing = append(missing, name)
		if p := toolPackages[name]; p != "" && !slices.Contains(pkgs, p) {
			pkgs = append(pkgs, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	hint := strings.Join(missing, ", ") + " not found on PATH"
	if len(pkgs) > 0 {
		hint += ": apt-get install " + strings.Join(pkgs, " ")
	}
	if os.Getenv(PrivilegedEnv) == "require" {
		t.Fatal(hint + " (PUREBPF_PRIVILEGED=require: not skipping)")
	}
	t.Skip("skipped: " + hint)
}
