package tasks

import (
	"fmt"
	"reflect"
	"strings"
)

// FieldError is one violation, addressed by a JSON path such as
// "items[1].amount" so an agent can correct exactly that field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (f FieldError) String() string {
	if f.Field == "" {
		return f.Message
	}
	return f.Field + ": " + f.Message
}

// ValidationError lists every violation found in a submission.
type ValidationError struct {
	Fields []FieldError `json:"fields"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.String()
	}
	return "invalid posting: " + strings.Join(parts, "; ")
}

func invalid(field, msg string) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: msg}}}
}

// MaxFieldErrors bounds the violations one response lists. Enough for an
// agent to fix a document in one round; a request with more is usually one
// mistake repeated (a number for every amount), and listing all of a
// megabyte's worth would flood the agent's context.
const MaxFieldErrors = 50

// checker collects violations so that one response lists them all, up to
// MaxFieldErrors.
type checker struct {
	errs []FieldError
	more int // violations beyond MaxFieldErrors
	// badUTF8 holds the offsets of invalid UTF-8 in the raw input not yet
	// attributed to a field.
	badUTF8 []badByte
	// extra are top-level fields accepted beside the decoded type's own.
	extra map[string]reflect.Type
}

// utf8In reports the invalid UTF-8 that the token just read contained, as
// a violation of the field at path.
func (c *checker) utf8In(dec interface{ InputOffset() int64 }, path string) {
	if len(c.badUTF8) == 0 || c.badUTF8[0].at >= dec.InputOffset() {
		return
	}
	c.add(path, "is not valid UTF-8 (byte 0x%02x at offset %d); send text encoded as UTF-8: sapq refuses it rather than repair it", c.badUTF8[0].b, c.badUTF8[0].at)
	for len(c.badUTF8) > 0 && c.badUTF8[0].at < dec.InputOffset() {
		c.badUTF8 = c.badUTF8[1:]
	}
}

func (c *checker) add(field, format string, args ...any) {
	if len(c.errs) >= MaxFieldErrors {
		c.more++
		return
	}
	c.errs = append(c.errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	errs := c.errs
	if c.more > 0 {
		errs = append(errs, FieldError{Message: fmt.Sprintf("and %d more violations not listed; fix these first", c.more)})
	}
	return &ValidationError{Fields: errs}
}
