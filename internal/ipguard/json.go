package ipguard

import (
	"bytes"
	"encoding/json"
	"errors"
)

// CheckJSON returns nil when payload is well-formed JSON, and otherwise an
// EInvalid error for field that says where it breaks (line, column and byte
// offset) and why, so that the caller can find the mistake in their event.
func CheckJSON(field string, payload []byte) error {
	var v any
	err := json.Unmarshal(payload, &v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	off := int64(len(payload))
	reason := err.Error()
	if errors.As(err, &se) {
		off = se.Offset
		reason = se.Error()
	}
	line, col := position(payload, off)
	return Invalid(field, string(payload), "is not valid JSON: %s at line %d, column %d (byte %d)", reason, line, col, off)
}

// position is the 1-based line and column of the off-th byte (the decoder's
// offset counts the bytes it read, the offending one last).
func position(b []byte, off int64) (line, col int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	if off < 0 {
		off = 0
	}
	before := b[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	if col < 1 {
		col = 1
	}
	return line, col
}
