package pcapfilter

import (
	"testing"

	"github.com/purebpf/purebpf/asm"
	"golang.org/x/sys/unix"
)

// loadTarget loads prog, a program of target tg, and closes it.
func loadTarget(t testing.TB, tg spliceTarget, prog asm.Instructions) error {
	fd, err := loadProgram(tg.progType, prog)
	if err == nil {
		unix.Close(fd)
	}
	return err
}
