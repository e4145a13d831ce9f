package main

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// streamWriter writes chunks of output to a stream — standard output, a
// pipe, a terminal — from a goroutine of its own, so that a reader that
// stops reading blocks that goroutine, never the capture: a signal is
// still honoured, and the -w file still flushed, while the stream is
// stuck. The capture fills a chunk, hands it over with put, and takes an
// empty one with get; there are a fixed number of chunks, so a stream that
// does not keep up makes get wait (bounding the memory held), as a
// blocking write would, but get gives up when its context ends.
//
// The first write error is kept: the chunks after it are dropped, and get
// returns it.
type streamWriter struct {
	w       io.Writer
	queue   chan []byte
	free    chan []byte
	failed  chan struct{} // closed at the first write error
	exited  chan struct{} // closed when run returns
	written atomic.Int64  // chunks written, to tell a slow stream from a stuck one

	mu      sync.Mutex
	err     error
	closing sync.Once
}

// Chunk sizes and counts of the streams.
const (
	// textChunk is the size of a chunk of records; textChunks of them
	// make up to 1 MiB of records waiting for a slow reader.
	textChunk  = 64 << 10
	textChunks = 16
	// pcapChunk and pcapChunks are for -w to a stream (-w -, a pipe).
	pcapChunk  = 1 << 20
	pcapChunks = 4
)

// drainPatience is how long closeWait waits for a stream that writes
// nothing before it gives up on it: a reader that has stopped reading
// does not hold up the exit.
const drainPatience = time.Second

// errStalled is closeWait's error for a stream that stopped taking output.
var errStalled = errors.New("the output stopped taking data; what was still queued for it is dropped")

// newStreamWriter starts a streamWriter of n chunks of size bytes on w.
func newStreamWriter(w io.Writer, n, size int) *streamWriter {
	s := &streamWriter{
		w:      w,
		queue:  make(chan []byte, n),
		free:   make(chan []byte, n),
		failed: make(chan struct{}),
		exited: make(chan struct{}),
	}
	for range n {
		s.free <- make([]byte, 0, size)
	}
	go s.run()
	return s
}

func (s *streamWriter) run() {
	defer close(s.exited)
	for b := range s.queue {
		if s.Err() == nil && len(b) > 0 {
			if _, err := s.w.Write(b); err != nil {
				s.fail(err)
			}
		}
		s.written.Add(1)
		s.free <- b[:0]
	}
}

func (s *streamWriter) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
		close(s.failed)
	}
}

// Err returns the first write error, or nil.
func (s *streamWriter) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// get returns an empty chunk to fill. When every chunk is queued it waits
// for one, until ctx ends (returning ctx's error) or a write fails
// (returning that error).
func (s *streamWriter) get(ctx context.Context) ([]byte, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	select {
	case b := <-s.free:
		return b, nil
	default:
	}
	select {
	case b := <-s.free:
		return b, nil
	case <-s.failed:
		return nil, s.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put queues a chunk that get returned. It does not block: the queue has
// room for every chunk.
func (s *streamWriter) put(b []byte) {
	s.queue <- b
}

// closeWait stops taking chunks and waits for the queued ones to be
// written. It waits as long as it takes — as a blocking write would —
// until stop is closed (a signal asked lo-capture to stop); from then on
// only as long as the stream makes progress, a chunk written every
// drainPatience, and not at all once hard is closed (a second signal). It
// returns the first write error, or errStalled if it gave up, or nil.
func (s *streamWriter) closeWait(stop, hard <-chan struct{}) error {
	s.closing.Do(func() { close(s.queue) })
	t := time.NewTicker(drainPatience)
	defer t.Stop()
	stopped := false
	last := s.written.Load()
	for {
		select {
		case <-s.exited:
			return s.Err()
		case <-s.failed:
			return s.Err()
		case <-hard:
			return errStalled
		case <-stop:
			stopped, stop = true, nil
			last = s.written.Load()
		case <-t.C:
			n := s.written.Load()
			if stopped && n == last {
				return errStalled
			}
			last = n
		}
	}
}
