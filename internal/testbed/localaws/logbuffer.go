package localaws

import (
	"bytes"
	"sync"
)

// LogBuffer collects a service's log (an emulated function's output, or
// an in-process service's logger) for a test to print when it fails. It is
// safe for concurrent writers and for reading while they write.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
