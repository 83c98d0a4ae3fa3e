//go:build !unix

package localaws

import "testing"

// Exclusive is a no-op where file locks are not available.
func Exclusive(t testing.TB, name string) {}
