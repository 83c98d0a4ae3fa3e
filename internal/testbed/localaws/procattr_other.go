//go:build !linux

package localaws

import "syscall"

// procAttr puts the child in its own process group, so Stop reaches its
// children too.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
