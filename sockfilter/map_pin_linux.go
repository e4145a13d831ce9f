package sockfilter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/internal/sys"
)

// Pinning puts a map or a program in a bpf file system (bpffs), where it
// outlives the process: another process, or this one after a restart,
// opens it by its path. See Documentation/bpf/README and bpf(2)
// BPF_OBJ_PIN. The file system is usually mounted at /sys/fs/bpf
// (`mount -t bpf bpf /sys/fs/bpf`).

// bpffsHint says how to get a bpf file system.
const bpffsHint = "mount one with `mount -t bpf bpf /sys/fs/bpf`"

// Pin pins m at path, a new file on a bpf file system (bpf(2) BPF_OBJ_PIN,
// Linux 4.4), so that the map outlives m and this process until Unpin or
// the removal of the file. LoadPinnedMap opens it again. Pinning needs
// CAP_BPF (or root).
func (m *Map) Pin(path string) error {
	op := "pin map " + m.describe()
	err := m.use(op, func(fd int) error { return pinObject(op, fd, path) })
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.pinned = path
	m.mu.Unlock()
	return nil
}

// Unpin removes the pin Pin made, or the one LoadPinnedMap opened m from.
// The map lives on as long as something else holds it. Unpin of a map that
// is not pinned does nothing.
func (m *Map) Unpin() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return unpin(&m.pinned, "unpin map "+m.describe())
}

// LoadPinnedMap opens the map pinned at path (bpf(2) BPF_OBJ_GET). The
// Map's type, sizes, flags and name are the kernel's (BPF_OBJ_GET_INFO_BY_FD).
func LoadPinnedMap(path string) (*Map, error) {
	op := "load pinned map " + path
	fd, err := getPinned(op, path, "bpf-map", "LoadPinnedProgram")
	if err != nil {
		return nil, err
	}
	info, err := mapInfo(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	m := &Map{
		fd: fd, open: true,
		typ: info.Type, name: info.Name,
		keySize: info.KeySize, valueSize: info.ValueSize, maxEntries: info.MaxEntries, flags: info.Flags,
		pinned: path,
	}
	if m.typ.PerCPU() {
		if m.cpus, err = PossibleCPUs(); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	return m, nil
}

// Pin pins p at path, a new file on a bpf file system (bpf(2) BPF_OBJ_PIN,
// Linux 4.4), so that the program outlives p and this process until Unpin
// or the removal of the file. LoadPinnedProgram opens it again.
func (p *Program) Pin(path string) error {
	op := "pin program"
	if err := p.use(op, func(fd int) error { return pinObject(op, fd, path) }); err != nil {
		return err
	}
	p.mu.Lock()
	p.pinned = path
	p.mu.Unlock()
	return nil
}

// Unpin removes the pin Pin made, or the one LoadPinnedProgram opened p
// from. Unpin of a program that is not pinned does nothing.
func (p *Program) Unpin() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return unpin(&p.pinned, "unpin program")
}

// LoadPinnedProgram opens the socket filter pinned at path (bpf(2)
// BPF_OBJ_GET). Its name is the kernel's; Instructions returns nil, for
// the kernel keeps the program only as the verifier rewrote it.
func LoadPinnedProgram(path string) (*Program, error) {
	op := "load pinned program " + path
	fd, err := getPinned(op, path, "bpf-prog", "LoadPinnedMap")
	if err != nil {
		return nil, err
	}
	var info sys.ProgInfo
	if err := sys.ObjGetInfoByFD(fd, &info); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: program info: %w", op, err)
	}
	if info.Type != sys.BPF_PROG_TYPE_SOCKET_FILTER {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: program type %d is not a socket filter (%d)", op, info.Type, sys.BPF_PROG_TYPE_SOCKET_FILTER)
	}
	return &Program{fd: fd, open: true, name: info.Name.String(), pinned: path}, nil
}

// pinObject pins the object fd at path.
func pinObject(op string, fd int, path string) error {
	if path == "" {
		return fmt.Errorf("%s: empty path", op)
	}
	if err := checkBPFFS(filepath.Dir(path)); err != nil {
		return fmt.Errorf("%s at %s: %w", op, path, err)
	}
	attr := sys.ObjPinAttr{Pathname: sys.StringPointer(path), BPFFD: uint32(fd)}
	if err := sys.ObjPin(&attr); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%s at %s: %w: unpin what is there first (remove the file)", op, path, err)
		}
		return fmt.Errorf("%s at %s: %w", op, path, err)
	}
	return nil
}

// getPinned opens the object pinned at path, checking that it is of the
// kind (the anon inode name, "bpf-map" or "bpf-prog") the caller wants.
func getPinned(op, path, kind, other string) (int, error) {
	if path == "" {
		return -1, fmt.Errorf("%s: empty path", op)
	}
	if strings.IndexByte(path, 0) >= 0 {
		return -1, fmt.Errorf("%s: path contains a NUL byte", op)
	}
	if err := checkBPFFS(path); err != nil {
		return -1, fmt.Errorf("%s: %w", op, err)
	}
	fd, err := sys.ObjGet(&sys.ObjPinAttr{Pathname: sys.StringPointer(path)})
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return -1, fmt.Errorf("%s: needs CAP_BPF (or root): %w", op, err)
		}
		return -1, fmt.Errorf("%s: %w", op, err)
	}
	got, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", op, err)
	}
	if got != "anon_inode:"+kind {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: it is a %s, not a %s (see %s)", op, strings.TrimPrefix(got, "anon_inode:"), kind, other)
	}
	return fd, nil
}

// checkBPFFS checks that path is on a bpf file system (statfs(2)
// f_type BPF_FS_MAGIC).
func checkBPFFS(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return os.NewSyscallError("statfs", err)
	}
	if uint32(st.Type) != unix.BPF_FS_MAGIC {
		return fmt.Errorf("%s is not on a bpf file system (bpffs): %s", path, bpffsHint)
	}
	return nil
}

// unpin removes the file *pinned names, if any, and forgets it.
func unpin(pinned *string, op string) error {
	if *pinned == "" {
		return nil
	}
	if err := os.Remove(*pinned); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", op, err)
	}
	*pinned = ""
	return nil
}
