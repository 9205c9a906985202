package tasks

import (
	"reflect"
	"slices"
	"strconv"
	"sync"
)

// The fast path of decodeStrict. Walking a request with json.Decoder.Token
// costs two allocations per token and, for a posting, several times the
// decoding itself; and almost every request is well formed. So the bytes
// are first walked here, without allocating, against a field table computed
// once per type. The walk only answers "exactly the right shape": valid
// JSON, every key exactly a field's name and given once, every value of its
// field's JSON type, nothing after the object. Anything else, or anything
// it is unsure of (an escaped key, a deep generic value), sends the request
// to checkShape, which finds and words the errors as it always did. So the
// fast path can never accept what checkShape refuses, and the errors an
// agent reads do not depend on it.

// shapeOf is a type's table for the fast walk.
type shapeOf struct {
	kind   reflect.Kind
	fields []shapeField // struct: its JSON fields, in declaration order
	elem   *shapeOf     // slice, array, map: the element's
}

type shapeField struct {
	name  string
	shape *shapeOf
}

var shapeCache sync.Map // reflect.Type -> *shapeOf

// shapeFor is t's table, built once per type (recursive types share it).
func shapeFor(t reflect.Type) *shapeOf {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := shapeCache.Load(t); ok {
		return s.(*shapeOf)
	}
	s := &shapeOf{kind: t.Kind()}
	// Stored before its fields are filled, so that a recursive type finds
	// itself; the table is complete before shapeFor returns it.
	actual, loaded := shapeCache.LoadOrStore(t, s)
	if loaded {
		return actual.(*shapeOf)
	}
	switch t.Kind() {
	case reflect.Struct:
		// jsonFields's names and types, an untagged embedded struct's
		// fields promoted as there.
		for i := range t.NumField() {
			f := t.Field(i)
			var promoted []shapeField
			if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("json") == "" {
				promoted = shapeFor(f.Type).fields
			} else if name, ok := jsonName(f); ok {
				promoted = []shapeField{{name: name, shape: shapeFor(f.Type)}}
			}
			for _, field := range promoted {
				s.add(field)
			}
		}
	case reflect.Slice, reflect.Array, reflect.Map:
		s.elem = shapeFor(t.Elem())
	}
	return s
}

// add adds a field to a struct's table; of two fields with one name, the
// later one wins, as in jsonFields.
func (s *shapeOf) add(field shapeField) {
	if j := slices.IndexFunc(s.fields, func(sf shapeField) bool { return sf.name == field.name }); j >= 0 {
		s.fields[j] = field
		return
	}
	s.fields = append(s.fields, field)
}

// fastShapeOK reports whether raw is one JSON object of exactly t's shape,
// with the top-level fields of extra accepted beside t's own; sawExtra says
// whether one of them was present. false means "ask checkShape", not
// "invalid".
func fastShapeOK(raw []byte, t reflect.Type, extra map[string]reflect.Type) (ok, sawExtra bool) {
	w := fastWalk{raw: raw}
	w.space()
	if w.i >= len(raw) || raw[w.i] != '{' {
		return false, false
	}
	if !w.object(shapeFor(t), extra, &sawExtra) {
		return false, false
	}
	w.space()
	return w.i == len(raw), sawExtra
}

// maxFastDepth bounds the nesting the walk follows in values of no fixed
// shape (interface{} fields); deeper ones go to checkShape.
const maxFastDepth = 64

type fastWalk struct {
	raw []byte
	i   int
}

func (w *fastWalk) space() {
	for w.i < len(w.raw) {
		switch w.raw[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// value walks one value that must decode into s.
func (w *fastWalk) value(s *shapeOf) bool {
	w.space()
	if w.i >= len(w.raw) {
		return false
	}
	c := w.raw[w.i]
	if c == 'n' {
		return w.literal("null") // null is accepted anywhere, as checkShape does
	}
	switch s.kind {
	case reflect.Interface:
		return w.any(0)
	case reflect.Struct:
		return c == '{' && w.object(s, nil, nil)
	case reflect.Map:
		return c == '{' && w.object(s, nil, nil)
	case reflect.Slice, reflect.Array:
		if c != '[' {
			return false
		}
		w.i++
		w.space()
		if w.i < len(w.raw) && w.raw[w.i] == ']' {
			w.i++
			return true
		}
		for {
			if !w.value(s.elem) {
				return false
			}
			if more, ok := w.separator(']'); !more {
				return ok
			}
		}
	case reflect.String:
		if c != '"' {
			return false
		}
		_, ok := w.str()
		return ok
	case reflect.Bool:
		return (c == 't' && w.literal("true")) || (c == 'f' && w.literal("false"))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		start := w.i
		if !w.number() {
			return false
		}
		n := w.raw[start:w.i]
		if s.kind >= reflect.Uint && n[0] == '-' {
			return false
		}
		// checkShape's test: the number must be an int64.
		_, err := strconv.ParseInt(string(n), 10, 64)
		return err == nil
	case reflect.Float32, reflect.Float64:
		return w.number()
	}
	return false
}

// object walks an object whose opening brace is at w.i, into a struct or a
// map shape.
func (w *fastWalk) object(s *shapeOf, extra map[string]reflect.Type, sawExtra *bool) bool {
	w.i++ // '{'
	var seen uint64
	var seenMore map[int]bool // fields beyond the 64th, rare
	w.space()
	if w.i < len(w.raw) && w.raw[w.i] == '}' {
		w.i++
		return true
	}
	for {
		w.space()
		if w.i >= len(w.raw) || w.raw[w.i] != '"' {
			return false
		}
		key, ok := w.str()
		if !ok || key == nil {
			return false // malformed, or an escaped key: checkShape reads it
		}
		w.space()
		if w.i >= len(w.raw) || w.raw[w.i] != ':' {
			return false
		}
		w.i++
		switch s.kind {
		case reflect.Map:
			if !w.value(s.elem) {
				return false
			}
		case reflect.Struct:
			idx := -1
			for j := range s.fields {
				if s.fields[j].name == string(key) { // no allocation
					idx = j
					break
				}
			}
			if idx < 0 {
				ft, isExtra := extra[string(key)]
				if !isExtra {
					return false
				}
				*sawExtra = true
				if !w.value(shapeFor(ft)) {
					return false
				}
				break
			}
			if idx < 64 {
				if seen&(1<<idx) != 0 {
					return false
				}
				seen |= 1 << idx
			} else {
				if seenMore[idx] {
					return false
				}
				if seenMore == nil {
					seenMore = map[int]bool{}
				}
				seenMore[idx] = true
			}
			if !w.value(s.fields[idx].shape) {
				return false
			}
		default:
			return false
		}
		if more, ok := w.separator('}'); !more {
			return ok
		}
	}
}

// any walks one value of any type.
func (w *fastWalk) any(depth int) bool {
	if depth > maxFastDepth {
		return false
	}
	w.space()
	if w.i >= len(w.raw) {
		return false
	}
	switch c := w.raw[w.i]; c {
	case '{', '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		w.i++
		w.space()
		if w.i < len(w.raw) && w.raw[w.i] == end {
			w.i++
			return true
		}
		for {
			if c == '{' {
				w.space()
				if w.i >= len(w.raw) || w.raw[w.i] != '"' {
					return false
				}
				if _, ok := w.str(); !ok {
					return false
				}
				w.space()
				if w.i >= len(w.raw) || w.raw[w.i] != ':' {
					return false
				}
				w.i++
			}
			if !w.any(depth + 1) {
				return false
			}
			w.space()
			if w.i >= len(w.raw) {
				return false
			}
			switch w.raw[w.i] {
			case ',':
				w.i++
			case end:
				w.i++
				return true
			default:
				return false
			}
		}
	case '"':
		_, ok := w.str()
		return ok
	case 't':
		return w.literal("true")
	case 'f':
		return w.literal("false")
	case 'n':
		return w.literal("null")
	default:
		return w.number()
	}
}

func (w *fastWalk) literal(lit string) bool {
	if len(w.raw)-w.i < len(lit) || string(w.raw[w.i:w.i+len(lit)]) != lit {
		return false
	}
	w.i += len(lit)
	return true
}

// str walks a string whose opening quote is at w.i. It returns its raw
// contents when they hold no escape (nil when they do) and whether the
// string is valid JSON. The input's UTF-8 was checked before the walk.
func (w *fastWalk) str() ([]byte, bool) {
	w.i++ // '"'
	start := w.i
	escaped := false
	for w.i < len(w.raw) {
		c := w.raw[w.i]
		switch {
		case c == '"':
			s := w.raw[start:w.i]
			w.i++
			if escaped {
				return nil, true
			}
			return s, true
		case c == '\\':
			escaped = true
			if w.i+1 >= len(w.raw) {
				return nil, false
			}
			switch w.raw[w.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				w.i += 2
			case 'u':
				if len(w.raw)-w.i < 6 {
					return nil, false
				}
				for _, h := range w.raw[w.i+2 : w.i+6] {
					if !isHex(h) {
						return nil, false
					}
				}
				w.i += 6
			default:
				return nil, false
			}
		case c < 0x20:
			return nil, false
		default:
			w.i++
		}
	}
	return nil, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number walks a JSON number (RFC 8259's grammar).
func (w *fastWalk) number() bool {
	r, i := w.raw, w.i
	if i < len(r) && r[i] == '-' {
		i++
	}
	switch {
	case i < len(r) && r[i] == '0':
		i++
	case i < len(r) && '1' <= r[i] && r[i] <= '9':
		for i < len(r) && isDigit(r[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(r) && r[i] == '.' {
		i++
		if i >= len(r) || !isDigit(r[i]) {
			return false
		}
		for i < len(r) && isDigit(r[i]) {
			i++
		}
	}
	if i < len(r) && (r[i] == 'e' || r[i] == 'E') {
		i++
		if i < len(r) && (r[i] == '+' || r[i] == '-') {
			i++
		}
		if i >= len(r) || !isDigit(r[i]) {
			return false
		}
		for i < len(r) && isDigit(r[i]) {
			i++
		}
	}
	// A number must end where a value ends.
	if i < len(r) {
		switch r[i] {
		case ' ', '\t', '\n', '\r', ',', '}', ']':
		default:
			return false
		}
	}
	w.i = i
	return true
}

// separator consumes what follows a value in an array or object: a comma
// (more: another value follows) or the closing bracket (ok: the end).
func (w *fastWalk) separator(closing byte) (more, ok bool) {
	w.space()
	if w.i >= len(w.raw) {
		return false, false
	}
	switch w.raw[w.i] {
	case ',':
		w.i++
		return true, true
	case closing:
		w.i++
		return false, true
	}
	return false, false
}
