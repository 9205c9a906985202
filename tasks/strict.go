package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// DecodeStrict decodes one JSON object into v as strictly as an agent's
// input deserves: field names must match the JSON tags exactly (encoding/json
// alone matches them case-insensitively and keeps the last of duplicate
// keys), unknown fields, wrong types and trailing data are errors. Every
// error is a *ValidationError naming the field's path.
func DecodeStrict(raw []byte, v any) error {
	if err := checkKeys(json.NewDecoder(bytes.NewReader(raw)), reflect.TypeOf(v), ""); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(raw, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("", "unexpected data after the JSON object")
	}
	return nil
}

// checkKeys walks one JSON value alongside the Go type it decodes into and
// reports the first object key that is not exactly a field's JSON name, or
// that appears twice. Values of the wrong shape are left for the decoder to
// report.
func checkKeys(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return nil // malformed JSON: the decoder reports it with its offset
	}
	delim, isDelim := tok.(json.Delim)
	switch {
	case isDelim && delim == '{' && t != nil && t.Kind() == reflect.Struct:
		fields := jsonFields(t)
		seen := map[string]bool{}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return nil
			}
			key, _ := keyTok.(string)
			at := join(path, key)
			f, ok := fields[key]
			if !ok {
				msg := "unknown field; remove it (see the tool's input schema for the accepted fields)"
				for name := range fields {
					if strings.EqualFold(name, key) {
						msg = fmt.Sprintf("unknown field; field names are case-sensitive: did you mean %q?", name)
					}
				}
				return invalid(at, msg)
			}
			if seen[key] {
				return invalid(at, "appears more than once; send each field once")
			}
			seen[key] = true
			if err := checkKeys(dec, f, at); err != nil {
				return err
			}
		}
		dec.Token() // '}'
	case isDelim && delim == '[' && t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i := 0; dec.More(); i++ {
			if err := checkKeys(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		dec.Token() // ']'
	case isDelim && (delim == '{' || delim == '['):
		skipRest(dec)
	}
	return nil
}

// jsonFields maps the JSON names of a struct's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// skipRest consumes the rest of an object or array whose opening delimiter
// was just read.
func skipRest(dec *json.Decoder) {
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
