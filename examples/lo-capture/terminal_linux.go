package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// terminal reports whether w is a terminal (TCGETS succeeds on it), and
// a function that returns its size in rows and columns (TIOCGWINSZ), 0s
// if unknown.
func terminal(w io.Writer) (bool, func() (rows, cols int)) {
	f, ok := w.(*os.File)
	if !ok {
		return false, nil
	}
	fd := int(f.Fd())
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return false, nil
	}
	return true, func() (rows, cols int) {
		ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		if err != nil {
			return 0, 0
		}
		return int(ws.Row), int(ws.Col)
	}
}
