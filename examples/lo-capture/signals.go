package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
)

// signals turns the signals lo-capture handles into what the capture
// checks: ctx ends at the first SIGINT, SIGTERM or SIGHUP, which stop the
// capture cleanly, as tcpdump stops; hard closes at the second, which
// gives up waiting for a stuck standard output; SIGUSR1 calls the function
// given to onInfo, which prints the counts, at once — even while the
// capture waits for a stuck standard output. SIGPIPE is caught, so that
// writes to a broken pipe fail with EPIPE instead of killing the process.
type signals struct {
	ctx    context.Context
	cancel context.CancelFunc
	hard   chan struct{}
	info   atomic.Pointer[func()]
	ch     chan os.Signal
	once   sync.Once
}

func watchSignals() *signals {
	s := &signals{hard: make(chan struct{}), ch: make(chan os.Signal, 8)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	sigs := append([]os.Signal(nil), stopSignals...)
	for _, sig := range []os.Signal{infoSignal, pipeSignal} {
		if sig != nil {
			sigs = append(sigs, sig)
		}
	}
	signal.Notify(s.ch, sigs...)
	go s.run()
	return s
}

func (s *signals) run() {
	stops := 0
	for sig := range s.ch {
		switch {
		case infoSignal != nil && sig == infoSignal:
			if f := s.info.Load(); f != nil && *f != nil {
				(*f)()
			}
		case pipeSignal != nil && sig == pipeSignal:
			// The write that raised it reports EPIPE.
		default:
			stops++
			s.cancel()
			if stops > 1 {
				s.once.Do(func() { close(s.hard) })
			}
		}
	}
}

// stop releases the signals.
func (s *signals) stop() {
	signal.Stop(s.ch)
	s.cancel()
}

// onInfo sets what SIGUSR1 does (nil: nothing); f must be safe to call
// from another goroutine.
func (s *signals) onInfo(f func()) { s.info.Store(&f) }
