//go:build !unix

package main

import "errors"

func lookupUser(name string) (uid, gid int, groups []int, err error) {
	return 0, 0, nil, errors.New("-Z: changing user needs a Unix system")
}

func dropPrivileges(name string, uid, gid int, groups []int) error { return nil }
