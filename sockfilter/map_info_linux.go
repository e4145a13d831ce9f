package sockfilter

import (
	"fmt"

	"github.com/purebpf/purebpf/internal/sys"
)

// Info returns what the kernel reports about m (bpf(2)
// BPF_OBJ_GET_INFO_BY_FD).
func (m *Map) Info() (MapInfo, error) {
	var info MapInfo
	err := m.use("map info", func(fd int) error {
		var err error
		info, err = mapInfo(fd)
		return err
	})
	if err != nil {
		return MapInfo{}, fmt.Errorf("%w (map %s)", err, m.describe())
	}
	return info, nil
}

func mapInfo(fd int) (MapInfo, error) {
	var info sys.MapInfo
	if err := sys.MapGetInfoByFD(fd, &info); err != nil {
		return MapInfo{}, fmt.Errorf("map info: %w", err)
	}
	return MapInfo{
		ID:         info.ID,
		Type:       MapType(info.Type),
		Name:       info.Name.String(),
		KeySize:    info.KeySize,
		ValueSize:  info.ValueSize,
		MaxEntries: info.MaxEntries,
		Flags:      MapFlags(info.MapFlags),
	}, nil
}
