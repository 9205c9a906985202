package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"strings"
	"unicode/utf8"
)

// DecodeStrict decodes one JSON object into v as strictly as an agent's
// input deserves: field names must match the JSON tags exactly (encoding/json
// alone matches them case-insensitively and keeps the last of duplicate
// keys), unknown fields, wrong types and trailing data are errors. Every
// error is a *ValidationError naming the field's path, and all of a
// request's shape errors are listed at once, so an agent fixes them in one
// round.
//
// Invalid UTF-8 is refused, never repaired: encoding/json would replace each
// bad byte by U+FFFD, so the bytes are checked first, and the field holding
// them is named.
func DecodeStrict(raw []byte, v any) error { _, err := decodeStrict(raw, v, nil); return err }

// decodeStrict is DecodeStrict that also accepts the top-level fields of
// extra (checked for their JSON type, decoded by the caller); sawExtra is
// false only if none of them was present.
func decodeStrict(raw []byte, v any, extra map[string]reflect.Type) (sawExtra bool, err error) {
	if reflect.TypeOf(v) == nil {
		return false, errors.New("tasks: DecodeStrict into nil")
	}
	// The common case, a well-formed request of the right shape, is told
	// without allocating (strictfast.go). Its shape being right, the
	// decoder finds no unknown field, and nothing follows the object.
	if utf8.Valid(raw) {
		if ok, saw := fastShapeOK(raw, reflect.TypeOf(v), extra); ok {
			if err := json.Unmarshal(raw, v); err != nil {
				return saw, decodeError(err)
			}
			return saw, nil
		}
	}
	return true, decodeStrictSlow(raw, v, extra)
}

// decodeStrictSlow checks the shape token by token, naming every error.
func decodeStrictSlow(raw []byte, v any, extra map[string]reflect.Type) error {
	c := checker{badUTF8: invalidUTF8(raw, MaxFieldErrors), extra: extra}
	err := checkShape(newTokenizer(raw), reflect.TypeOf(v), "", &c)
	if err == nil && len(c.badUTF8) > 0 {
		// Bad bytes outside any string (between tokens) make the JSON
		// malformed, which the decoder below reports; inside a string they
		// were all attributed.
		c.add("", "is not valid UTF-8 (byte 0x%02x at offset %d)", c.badUTF8[0].b, c.badUTF8[0].at)
	}
	if err == nil && len(c.errs) > 0 {
		return c.err()
	}
	// The shape is right, or the JSON is malformed: the decoder reports a
	// syntax error with its offset.
	dec := json.NewDecoder(bytes.NewReader(raw))
	if extra == nil {
		// The shape check has refused unknown fields already; with extra
		// fields, it is the only check.
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("", "unexpected data after the JSON object")
	}
	return nil
}

func newTokenizer(raw []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // so integers are checked exactly, not as float64
	return dec
}

// checkShape walks one JSON value alongside the Go type it decodes into and
// records every object key that is not exactly a field's JSON name or that
// appears twice, and every value of the wrong JSON type, with its path.
// A null is accepted anywhere, as encoding/json does: it leaves the zero
// value, which validation then reports as missing where a value is required.
// It returns an error only for malformed JSON.
func checkShape(dec *json.Decoder, t reflect.Type, path string, c *checker) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	c.utf8In(dec, path)
	if tok == nil {
		return nil
	}
	delim, isDelim := tok.(json.Delim)
	switch {
	case t.Kind() == reflect.Struct && isDelim && delim == '{':
		fields := jsonFields(t)
		if path == "" {
			for name, ft := range c.extra {
				fields[name] = ft
			}
		}
		seen := map[string]bool{}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := keyTok.(string)
			at := join(path, key)
			c.utf8In(dec, at)
			f, known := fields[key]
			switch {
			case !known:
				c.add(at, "%s", unknownField(fields, key))
				if err := skipValue(dec); err != nil {
					return err
				}
				c.utf8In(dec, at)
				continue
			case seen[key]:
				c.add(at, "appears more than once; send each field once")
			}
			seen[key] = true
			if err := checkShape(dec, f, at, c); err != nil {
				return err
			}
		}
		_, err := dec.Token() // '}'
		return err
	case t.Kind() == reflect.Map && isDelim && delim == '{':
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := keyTok.(string)
			c.utf8In(dec, join(path, key))
			if err := checkShape(dec, t.Elem(), join(path, key), c); err != nil {
				return err
			}
		}
		_, err := dec.Token() // '}'
		return err
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && isDelim && delim == '[':
		for i := 0; dec.More(); i++ {
			if err := checkShape(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i), c); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	if got, ok := mismatch(t, tok); ok {
		c.add(path, "must be %s, got %s", jsonTypeName(t.Kind()), got)
	}
	if isDelim {
		err := skipRest(dec)
		c.utf8In(dec, path)
		return err
	}
	return nil
}

// mismatch reports the JSON type of tok when it cannot decode into t.
// Objects and arrays that do match were handled by the caller.
func mismatch(t reflect.Type, tok json.Token) (string, bool) {
	var got string
	switch v := tok.(type) {
	case json.Delim:
		got = map[json.Delim]string{'{': "an object", '[': "an array"}[v]
	case string:
		got = "a string"
	case bool:
		got = "a boolean"
	case json.Number:
		got = "a number"
		switch k := t.Kind(); {
		case k >= reflect.Int && k <= reflect.Int64:
			if _, err := v.Int64(); err == nil {
				return "", false
			}
			got = "the number " + v.String()
		case k >= reflect.Uint && k <= reflect.Uint64:
			if !strings.HasPrefix(v.String(), "-") {
				if _, err := v.Int64(); err == nil {
					return "", false
				}
			}
			got = "the number " + v.String()
		case k == reflect.Float32 || k == reflect.Float64:
			return "", false
		}
		return got, true
	}
	want := map[reflect.Kind]string{reflect.String: "a string", reflect.Bool: "a boolean"}[t.Kind()]
	if t.Kind() == reflect.Interface || want == got {
		return "", false
	}
	return got, true
}

func unknownField(fields map[string]reflect.Type, key string) string {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf("unknown field; field names are case-sensitive: did you mean %q?", name)
		}
	}
	return "unknown field; remove it (see the tool's input schema for the accepted fields)"
}

// jsonFields maps the JSON names of a struct's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("json") == "" {
			// encoding/json promotes an untagged embedded struct's fields.
			maps.Copy(out, jsonFields(f.Type))
			continue
		}
		if name, ok := jsonName(f); ok {
			out[name] = f.Type
		}
	}
	return out
}

// jsonName is the JSON name of a struct field, false if it has none.
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return "", false
	case "":
		return f.Name, true
	}
	return name, true
}

// skipValue consumes one whole value.
func skipValue(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
		return skipRest(dec)
	}
	return nil
}

// skipRest consumes the rest of an object or array whose opening delimiter
// was just read.
func skipRest(dec *json.Decoder) error {
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

// decodeError turns what encoding/json still reports once the shape is
// right, malformed or truncated JSON, into a message.
func decodeError(err error) error {
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &syntaxErr):
		return invalid("", fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "empty or truncated JSON object")
	default:
		return invalid("", err.Error())
	}
}

func jsonTypeName(k reflect.Kind) string {
	switch {
	case k == reflect.String:
		return "a string"
	case k == reflect.Slice, k == reflect.Array:
		return "an array"
	case k == reflect.Struct, k == reflect.Map:
		return "an object"
	case k == reflect.Bool:
		return "a boolean"
	case k >= reflect.Int && k <= reflect.Uint64:
		return "an integer"
	default:
		return "a number"
	}
}

// maxKeyInPath bounds how much of an object key a field path quotes: an
// unknown key may be as long as the request.
const maxKeyInPath = 64

func join(path, key string) string {
	if len(key) > maxKeyInPath {
		end := maxKeyInPath
		for end > 0 && !utf8.RuneStart(key[end]) {
			end--
		}
		key = key[:end] + "…"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}
