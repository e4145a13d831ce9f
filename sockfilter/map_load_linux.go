package sockfilter

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
)

// assembleWithMaps assembles insns with every map reference
// (Instruction.Map) replaced by the file descriptor of the map maps gives
// under its name. The descriptors are duplicates that done closes: a Map
// closed while the program loads does not take its fd from under the load.
func assembleWithMaps(insns asm.Instructions, maps map[string]*Map) (code []byte, done func(), err error) {
	done = func() {}
	refs := 0
	for _, ins := range insns {
		if ins.Map != "" {
			refs++
		}
	}
	if refs == 0 {
		code, err = insns.Assemble()
		return code, done, err
	}

	fds := map[string]int{}
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	resolved := slices.Clone(insns)
	for i := range resolved {
		ins := &resolved[i]
		if ins.Map == "" {
			continue
		}
		if !ins.IsLoadImm64() || (ins.Src != asm.PseudoMapFD && ins.Src != asm.PseudoMapValue) {
			closeAll()
			return nil, done, fmt.Errorf("instruction %d (%s) names map %q but is not a map load (asm.LoadMapPtr, asm.LoadMapValuePtr)", i, ins, ins.Map)
		}
		fd, ok := fds[ins.Map]
		if !ok {
			if fd, err = dupMapFD(ins.Map, maps); err != nil {
				closeAll()
				return nil, done, fmt.Errorf("instruction %d (%s): %w", i, ins, err)
			}
			fds[ins.Map] = fd
		}
		ins.Constant = ins.Constant&^0xffffffff | int64(uint32(fd))
		ins.Map = ""
	}
	if code, err = resolved.Assemble(); err != nil {
		closeAll()
		return nil, done, err
	}
	return code, closeAll, nil
}

// dupMapFD returns a duplicate of the fd of the map maps gives as name.
func dupMapFD(name string, maps map[string]*Map) (int, error) {
	m, ok := maps[name]
	if !ok {
		return -1, fmt.Errorf("the program uses map %q, which LoadOptions.Maps does not give%s", name, givenMaps(maps))
	}
	if m == nil {
		return -1, fmt.Errorf("LoadOptions.Maps gives a nil *Map as %q", name)
	}
	fd := -1
	err := m.use("map "+m.describe()+" given as "+fmt.Sprintf("%q", name), func(mfd int) error {
		var err error
		fd, err = unix.FcntlInt(uintptr(mfd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
		}
		return nil
	})
	return fd, err
}

// givenMaps lists the names maps has, for an error.
func givenMaps(maps map[string]*Map) string {
	if len(maps) == 0 {
		return " (it gives none)"
	}
	names := make([]string, 0, len(maps))
	for n := range maps {
		names = append(names, fmt.Sprintf("%q", n))
	}
	slices.Sort(names)
	return " (it gives " + strings.Join(names, ", ") + ")"
}
