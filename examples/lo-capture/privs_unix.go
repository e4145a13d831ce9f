//go:build unix

package main

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// lookupUser returns the ids -Z USER runs as: the user's, its primary
// group's and its supplementary groups' (from the group database, as
// initgroups(3) finds them). USER may also be a number.
func lookupUser(name string) (uid, gid int, groups []int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return 0, 0, nil, fmt.Errorf("-Z %s: %w", name, err)
	}
	if uid, err = strconv.Atoi(u.Uid); err != nil {
		return 0, 0, nil, fmt.Errorf("-Z %s: user id %q: %w", name, u.Uid, err)
	}
	if gid, err = strconv.Atoi(u.Gid); err != nil {
		return 0, 0, nil, fmt.Errorf("-Z %s: group id %q: %w", name, u.Gid, err)
	}
	groups = []int{gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.Atoi(s); err == nil && g != gid {
				groups = append(groups, g)
			}
		}
	}
	return uid, gid, groups, nil
}

// dropPrivileges makes the process run as the user -Z names, as tcpdump
// does once the capture socket and the files are open: setgroups(2) to the
// user's groups, setgid(2), then setuid(2). Since Go 1.16 these apply to
// every thread of the process (syscall.AllThreadsSyscall), so no thread is
// left with root's ids; once the user id is not 0 the kernel clears the
// capabilities too (capabilities(7)). It does nothing unless the process
// runs as root, or when USER is root, as tcpdump -Z root.
func dropPrivileges(name string, uid, gid int, groups []int) error {
	if os.Geteuid() != 0 || uid == 0 {
		return nil
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("-Z %s: setgroups: %w", name, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("-Z %s: setgid: %w", name, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("-Z %s: setuid: %w", name, err)
	}
	return nil
}
