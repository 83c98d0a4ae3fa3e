package ipguard

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"ipguard/internal/humantext"
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

// JSONMember is one member of a JSON object, as sent.
type JSONMember struct {
	Name  string
	Value json.RawMessage
}

// ObjectMembers returns the members of the JSON object b in document
// order, duplicates included (a map would keep one of them, whichever).
// b that is not JSON is CheckJSON's error for what; JSON that is not an
// object is EInvalid for what.
func ObjectMembers(b []byte, what string) ([]JSONMember, error) {
	if err := CheckJSON(what, b); err != nil {
		return nil, err
	}
	bad := Invalid(what, string(b), "must be a JSON object")
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, bad
	}
	var ms []JSONMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, bad
		}
		ms = append(ms, JSONMember{Name: name, Value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad
	}
	return ms, nil
}

// ByKnownName maps each known name (matched case-insensitively) to its
// value; other members are left out. A known name present more than once,
// in whatever spelling, is EInvalid naming both spellings (prefix before
// the field's name).
func ByKnownName(ms []JSONMember, known []string, prefix string) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(known))
	spelled := make(map[string]string, len(known))
	for _, m := range ms {
		for _, k := range known {
			if !strings.EqualFold(m.Name, k) {
				continue
			}
			if first, dup := spelled[k]; dup {
				return nil, Invalid(prefix+m.Name, "", "is given twice (as %q and %q); send it once", humantext.Clip(first, 80), humantext.Clip(m.Name, 80))
			}
			spelled[k] = m.Name
			out[k] = m.Value
		}
	}
	return out, nil
}

// UnknownMember returns the name of the first member that is none of
// known (matched case-insensitively).
func UnknownMember(ms []JSONMember, known []string) (string, bool) {
	for _, m := range ms {
		isKnown := false
		for _, k := range known {
			isKnown = isKnown || strings.EqualFold(m.Name, k)
		}
		if !isKnown {
			return m.Name, true
		}
	}
	return "", false
}
