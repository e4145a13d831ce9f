//go:build linux

package poller

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipePoller returns a Poller on the read end of a pipe, ready while the
// flag is set, and the write end.
func pipePoller(t *testing.T) (*Poller, *atomic.Bool, int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[1]) })
	var flag atomic.Bool
	pl, err := New(p[0], "pipe", flag.Load)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pl.Close() })
	return pl, &flag, p[1]
}

func TestWaitWakesOnReadable(t *testing.T) {
	pl, flag, w := pipePoller(t)
	flag.Store(true)
	if err := pl.Wait(); err != nil {
		t.Fatalf("Wait with ready set: %v", err)
	}
	flag.Store(false)
	done := make(chan error, 1)
	go func() { done <- pl.Wait() }()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Wait returned while not ready: %v", err)
	default:
	}
	// Readiness alone does not wake a waiter; the descriptor does.
	flag.Store(true)
	unix.Write(w, []byte{1})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake when the pipe became readable")
	}
}

func TestDeadline(t *testing.T) {
	pl, flag, _ := pipePoller(t)
	if pl.DeadlineArmed() {
		t.Error("armed without a deadline")
	}
	pl.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	start := time.Now()
	if err := pl.Wait(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Wait: %v, want the deadline", err)
	}
	if d := time.Since(start); d < 25*time.Millisecond {
		t.Errorf("deadline after %v", d)
	}
	if !pl.DeadlineArmed() {
		t.Error("not armed once the deadline passed")
	}
	flag.Store(true)
	if err := pl.CheckDeadline(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("CheckDeadline past the deadline: %v", err)
	}
	pl.SetReadDeadline(time.Time{})
	if pl.DeadlineArmed() {
		t.Error("armed after the deadline was cleared")
	}
	if err := pl.CheckDeadline(); err != nil {
		t.Errorf("CheckDeadline without deadline: %v", err)
	}
	// A future deadline arms itself when it passes, by its timer.
	pl.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if pl.DeadlineArmed() {
		t.Error("armed before the deadline")
	}
	time.Sleep(50 * time.Millisecond)
	if !pl.DeadlineArmed() {
		t.Error("not armed after the deadline")
	}
	// A deadline set again supersedes the old timer.
	pl.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	pl.SetReadDeadline(time.Now().Add(time.Hour))
	time.Sleep(30 * time.Millisecond)
	if pl.DeadlineArmed() {
		t.Error("the superseded deadline's timer armed the new one")
	}
}

func TestWithContext(t *testing.T) {
	pl, _, _ := pipePoller(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := pl.WithContext(ctx, pl.Wait); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WithContext: %v, want context.DeadlineExceeded", err)
	}
	// The caller's deadline (none) is back.
	if pl.DeadlineArmed() {
		t.Error("armed after the context's wait")
	}
	pl.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if err := pl.WithContext(context.Background(), pl.Wait); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("WithContext under a deadline: %v, want the deadline", err)
	}
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := pl.WithContext(done, pl.Wait); !errors.Is(err, context.Canceled) {
		t.Errorf("WithContext of a done context: %v", err)
	}
}

func TestCloseWakesWait(t *testing.T) {
	pl, _, _ := pipePoller(t)
	done := make(chan error, 1)
	go func() { done <- pl.Wait() }()
	time.Sleep(20 * time.Millisecond)
	if err := pl.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Wait after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Wait")
	}
	if err := pl.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if !pl.Closed() || !errors.Is(pl.CheckDeadline(), ErrClosed) || !errors.Is(pl.SetReadDeadline(time.Now()), ErrClosed) {
		t.Error("a closed Poller does not say so")
	}
}

func TestWaitNoAllocs(t *testing.T) {
	pl, flag, _ := pipePoller(t)
	flag.Store(true)
	if a := testing.AllocsPerRun(100, func() {
		if err := pl.Wait(); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Wait allocates %v times", a)
	}
}
