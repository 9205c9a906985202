package sap

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// validator collects input errors so that one Permanent error lists them all.
type validator struct {
	op       string
	problems []string
}

func (v *validator) fail(msg string) { v.problems = append(v.problems, msg) }

// required checks a mandatory field against SAP's maximum length, which
// counts characters, not bytes.
func (v *validator) required(field, val string, maxLen int) {
	if strings.TrimSpace(val) == "" {
		v.fail(field + " is required")
		return
	}
	v.optional(field, val, maxLen)
}

func (v *validator) optional(field, val string, maxLen int) {
	if n := utf8.RuneCountInString(val); n > maxLen {
		v.fail(field + " is longer than " + strconv.Itoa(maxLen) + " characters")
	}
}

func (v *validator) date(field string, t time.Time) {
	if t.IsZero() {
		v.fail(field + " is required")
	}
}

func (v *validator) err(c *Client) error {
	if len(v.problems) == 0 {
		return nil
	}
	return c.scrub(&Error{Category: Permanent, Op: v.op,
		Message: "invalid input, not sent: " + strings.Join(v.problems, "; ")})
}
