package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// chunkWriter is the io.Writer a pcapfile.Writer writes a stream through
// — standard output for -w -, a pipe, a device: each Write, which the
// pcapfile.Writer makes of whole records only, is copied into a chunk of
// a streamWriter and handed to its goroutine. While the stream is slow a
// Write waits for a free chunk: until ctx ends (a signal) while
// capturing; once closing, at the end, until the stream has taken nothing
// for drainPatience, or until hard is closed (a second signal).
type chunkWriter struct {
	ctx     context.Context
	s       *streamWriter
	hard    <-chan struct{}
	closing bool
}

func (cw *chunkWriter) Write(p []byte) (int, error) {
	ctx := cw.ctx
	if cw.closing {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), drainPatience)
		defer cancel()
		go func() {
			select {
			case <-cw.hard:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	buf, err := cw.s.get(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && cw.closing {
			err = errStalled
		}
		return 0, err
	}
	cw.s.put(append(buf, p...))
	return len(p), nil
}

// openOutputFile opens name for -w: created if missing, emptied if not.
// Unless follow, a symbolic link is refused (O_NOFOLLOW), not written
// through; and a file that is input — the same file as -r reads, by any
// path — is refused before anything is written to it. It reports whether
// it created the file, and whether it is a regular file (which can be cut
// back on a failure) rather than a pipe or a device.
func openOutputFile(name string, follow bool, input os.FileInfo) (f *os.File, created, regular bool, err error) {
	flags := os.O_WRONLY
	if !follow {
		flags |= oNoFollow
	}
	f, err = os.OpenFile(name, flags|os.O_CREATE|os.O_EXCL, 0o644)
	created = err == nil
	if errors.Is(err, fs.ErrExist) {
		f, err = os.OpenFile(name, flags, 0o644)
	}
	if err != nil {
		if !follow && isSymlink(name) {
			return nil, false, false, fmt.Errorf("-w %s: a symbolic link: refusing to write through it (give --follow-symlink to)", name)
		}
		return nil, false, false, fmt.Errorf("-w: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, false, fmt.Errorf("-w: %w", err)
	}
	if input != nil && os.SameFile(fi, input) {
		f.Close()
		return nil, false, false, fmt.Errorf("-w %s: the file -r reads: refusing to overwrite the input", name)
	}
	if fi.IsDir() {
		f.Close()
		return nil, false, false, fmt.Errorf("-w %s: a directory", name)
	}
	regular = fi.Mode().IsRegular()
	if regular && !created {
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, false, false, fmt.Errorf("-w: %w", err)
		}
	}
	return f, created, regular, nil
}

// isSymlink reports whether name is a symbolic link.
func isSymlink(name string) bool {
	fi, err := os.Lstat(name)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}
