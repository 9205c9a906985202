package tasks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// pathAt names the JSON value that ends at byte offset in raw, as
// "items[1].amount". encoding/json reports type errors with a dotted field
// path that omits array indices ("items.amount"); an agent with 40 lines needs
// to know which one.
func pathAt(raw []byte, offset int64) string {
	return walk(raw, func(path func() string, key string, end int64) (string, bool) {
		if key == "" && end >= offset {
			return path(), true
		}
		return "", false
	})
}

// keyPath names the first place where an object key appears in raw, as
// "items[1].discount": encoding/json reports unknown fields by name only.
func keyPath(raw []byte, name string) string {
	return walk(raw, func(path func() string, key string, end int64) (string, bool) {
		if key == name {
			if p := path(); p != "" {
				return p + "." + name, true
			}
			return name, true
		}
		return "", false
	})
}

// walk streams raw's tokens, calling visit for every object key (key set)
// and every completed or opened value (key empty) with the path of the
// enclosing value, until visit reports done.
func walk(raw []byte, visit func(path func() string, key string, end int64) (string, bool)) string {
	type frame struct {
		array     bool
		index     int
		key       string
		expectKey bool
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.array {
				fmt.Fprintf(&b, "[%d]", f.index)
			} else if f.key != "" {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			}
		}
		return b.String()
	}
	// valueDone advances the enclosing container past one value.
	valueDone := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].expectKey = true
			}
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		end := dec.InputOffset()
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				if p, done := visit(path, "", end); done {
					return p
				}
				stack = append(stack, frame{expectKey: true})
			case '[':
				if p, done := visit(path, "", end); done {
					return p
				}
				stack = append(stack, frame{array: true})
			default: // '}' or ']'
				stack = stack[:len(stack)-1]
				if p, done := visit(path, "", end); done {
					return p
				}
				valueDone()
			}
		default:
			if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].expectKey {
				key := t.(string)
				stack[n-1].key = ""
				if p, done := visit(path, key, end); done {
					return p
				}
				stack[n-1].key, stack[n-1].expectKey = key, false
				continue
			}
			if p, done := visit(path, "", end); done {
				return p
			}
			valueDone()
		}
	}
}
