package localaws

import "syscall"

// procAttr puts the child in its own process group (so Stop reaches its
// children too) and has the kernel kill it if this process dies first, e.g.
// when `go test` times out before the cleanups run.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
