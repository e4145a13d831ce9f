package sockfilter

import (
	"encoding/binary"
	"errors"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/sys"
	"github.com/purebpf/purebpf/internal/testutil"
)

// TestTestRunRepeatNotRetried runs a program that counts its runs in a map
// many times over while signals interrupt the test run, and checks that an
// interrupted run is not started again: the count is exactly the repeat
// count when the run succeeds, and less when it reports EINTR. Retrying
// the system call, as bpf(2) wrappers do for other commands, would run
// the repeats again and count more.
func TestTestRunRepeatNotRetried(t *testing.T) {
	testutil.RequirePrivileged(t)
	counter, err := NewMap(&MapSpec{Type: Array, Name: "runs", KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { counter.Close() })
	prog := mustLoad(t, asm.Instructions{
		asm.StoreImm(asm.R10, -4, 0, asm.Word), // key 0
		asm.LoadMapPtr(asm.R1, "runs"),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.Call(asm.FnMapLookupElem),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AtomicAdd.Mem(asm.R0, 0, asm.R1, asm.DWord), // lock *(u64 *)(r0 + 0) += r1
		asm.Mov.Imm(asm.R0, 0).WithLabel("out"),
		asm.Exit(),
	}, &LoadOptions{Maps: map[string]*Map{"runs": counter}})

	// Interrupt the thread making the call once, in the middle of the
	// run, with a signal the runtime takes in stride (SIGURG, as its own
	// preemption does). The run then stops with EINTR; a retry would run
	// every repeat again, undisturbed, and count more than the repeats.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	interrupt := func() (wait func()) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(5 * time.Millisecond)
			unix.Tgkill(unix.Getpid(), tid, syscall.SIGURG)
		}()
		return func() { <-done }
	}

	frame := udpFrame(53, "x")
	const repeat = 5_000_000 // about a quarter of a second
	key := make([]byte, 4)
	interrupted, whole := 0, 0
	for range 10 {
		if err := counter.Update(key, make([]byte, 8), UpdateAny); err != nil {
			t.Fatal(err)
		}
		attr := sys.ProgTestRunAttr{ProgFD: uint32(prog.FD()), DataSizeIn: uint32(len(frame)), DataIn: sys.SlicePointer(frame), Repeat: repeat}
		wait := interrupt()
		err := sys.ProgTestRun(&attr)
		wait()
		v, lerr := counter.Lookup(key)
		if lerr != nil {
			t.Fatal(lerr)
		}
		runs := binary.NativeEndian.Uint64(v)
		switch {
		case err == nil:
			whole++
			if runs != repeat {
				t.Errorf("a whole test run of %d repeats counted %d runs", repeat, runs)
			}
		case errors.Is(err, unix.EINTR):
			interrupted++
			if runs >= repeat {
				t.Errorf("an interrupted test run counted %d runs, not fewer than its %d repeats: it was run again", runs, repeat)
			}
		default:
			t.Fatal(err)
		}
	}
	t.Logf("%d runs interrupted, %d whole", interrupted, whole)
	if interrupted == 0 {
		t.Error("no test run was interrupted: the test did not test anything")
	}
}
