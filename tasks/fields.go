package tasks

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bojanz/currency"
	"github.com/shopspring/decimal"
)

// Field lengths come from SAP's service definitions (API_SUPPLIERINVOICE_PROCESS_SRV
// and JournalEntryCreateRequestConfirmation_In).
const (
	LenCompanyCode      = 4  // BUKRS
	LenSupplier         = 10 // LIFNR, InvoicingParty
	LenInvoiceReference = 16 // XBLNR, SupplierInvoiceIDByInvcgParty
	LenGLAccount        = 10 // SAKNR
	LenCostCenter       = 10 // KOSTL
	LenTaxCode          = 2  // MWSKZ
	LenHeaderText       = 25 // BKTXT
	LenItemText         = 50 // SGTXT
	LenReference        = 16 // XBLNR, DocumentReferenceID
	LenDocumentType     = 2  // BLART

	MaxIdempotencyKey = 128
	// MaxItems bounds the lines of one document.
	MaxItems = 999
	maxItems = MaxItems
	// MaxFractionDigits is the most decimals an amount may carry for now.
	MaxFractionDigits = 2
	dateLayout        = "2006-01-02"
	// maxAmountChars leaves room for a sign, leading zeros and a point.
	maxAmountChars = 32
)

// checkCode validates a required SAP key field: 1..max characters, upper case
// letters, digits and a few separators, no surrounding blanks.
func (c *checker) checkCode(field, v string, max int, required bool) {
	if v == "" {
		if required {
			c.add(field, "is required")
		}
		return
	}
	if n := utf8.RuneCountInString(v); n > max {
		c.add(field, "must be at most %d characters, got %d (%s)", max, n, quote(v))
		return
	}
	pos := 0
	for _, r := range v {
		pos++
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '/') {
			c.add(field, "must contain only upper-case letters A-Z, digits 0-9, '-', '_' or '/'; found %s at character %d of %s", describeRune(r), pos, quote(v))
			return
		}
	}
}

// checkText validates free text that SAP stores as-is: printable characters
// only (XML and JSON escaping happen on the way out, never here).
func (c *checker) checkText(field, v string, max int, required bool) {
	if v == "" {
		if required {
			c.add(field, "is required")
		}
		return
	}
	if !utf8.ValidString(v) {
		c.add(field, "must be valid UTF-8")
		return
	}
	if n := utf8.RuneCountInString(v); n > max {
		c.add(field, "must be at most %d characters, got %d", max, n)
		return
	}
	pos := 0
	for _, r := range v {
		pos++
		if !unicode.IsPrint(r) {
			c.add(field, "must contain only printable characters; found %s at character %d", describeRune(r), pos)
			return
		}
	}
}

// checkASCII refuses characters outside printable ASCII in a value that
// identifies something: a reference or an idempotency key. Letters from
// other scripts and full-width forms look like ASCII ones (Cyrillic "Р" and
// Latin "P", "Ｒ" and "R"), so "РЕ-2026-11-0042" and "RE-2026-11-0042" would
// be two references that a person reads as one, and the same invoice could
// be posted twice. The message names the character, so that the agent can
// see what it sent.
func (c *checker) checkASCII(field, v string) bool {
	r, pos, found := firstNonASCII(v)
	if !found {
		return true
	}
	c.add(field, "must contain only ASCII letters, digits, blanks and punctuation; found %s at character %d of %s", describeRune(r), pos, quote(v))
	return false
}

// checkReference validates a reference SAP keeps in upper case (its
// definitions mark them display-format UpperCase, and SAP converts on input).
// The supplier's invoice number is how sapq finds an invoice again after a
// lost answer, so sapq must send exactly what SAP will store: lower case or
// surrounding blanks would make the look-up miss the document and post it
// again. A journal entry's reference is held to the same rule, so that what
// the agent sends is what SAP shows.
func (c *checker) checkReference(field, v string, max int, required bool) {
	n := len(c.errs)
	c.checkText(field, v, max, required)
	if len(c.errs) > n || v == "" || !c.checkASCII(field, v) {
		return
	}
	if strings.TrimSpace(v) != v {
		c.add(field, "must not start or end with blanks, got %s", quote(v))
		return
	}
	if up := strings.ToUpper(v); up != v {
		c.add(field, "must be in upper case, as SAP stores it: send %s", quote(up))
	}
}

func (c *checker) checkDate(field, v string) {
	if v == "" {
		c.add(field, "is required (YYYY-MM-DD)")
		return
	}
	d, err := time.Parse(dateLayout, v)
	if err != nil || d.Format(dateLayout) != v {
		c.add(field, "must be a real calendar date as YYYY-MM-DD, got %s", quote(v))
		return
	}
	if d.Year() < 1900 {
		c.add(field, "must be in 1900 or later, got %s", quote(v))
	}
}

// checkCurrency validates an ISO 4217 code and returns how many fraction
// digits amounts in it may carry (at most MaxFractionDigits). The codes are
// CLDR's current ones (github.com/bojanz/currency): no withdrawn currencies
// (DEM, HRK) and none that no document is posted in (XAU gold, XTS testing,
// XXX "no currency").
func (c *checker) checkCurrency(field, v string) int {
	if v == "" {
		c.add(field, "is required (ISO 4217 code such as EUR or USD)")
		return MaxFractionDigits
	}
	digits, ok := currency.GetDigits(v)
	if !ok {
		c.add(field, "must be the ISO 4217 code of a currency in use, in upper case, such as EUR or USD; got %s", quote(v))
		return MaxFractionDigits
	}
	return min(int(digits), MaxFractionDigits)
}

// checkAmount parses a decimal string. It never goes through float64.
func (c *checker) checkAmount(field, v string, digits int) (decimal.Decimal, bool) {
	if v == "" {
		c.add(field, "is required (a decimal string such as \"100.00\")")
		return decimal.Decimal{}, false
	}
	if len(v) > maxAmountChars {
		// Parsing a megabyte of digits costs seconds; no amount is this long.
		c.add(field, "must be a decimal string of at most %d characters (11 integer digits, %d fraction digits), got %s", maxAmountChars, digits, quote(v))
		return decimal.Decimal{}, false
	}
	d, err := parseAmount(field, v)
	if err != nil {
		c.add(field, "must be a decimal string such as \"1234.56\" or \"-10.00\" (digits, optional sign and point; no exponent, no thousands separators), got %s", quote(v))
		return decimal.Decimal{}, false
	}
	if -d.Exponent() > int32(digits) {
		c.add(field, "must have at most %d fraction digits, got %s", digits, quote(v))
		return decimal.Decimal{}, false
	}
	// SAP's amount fields are DEC 23,3 at most (InvoiceGrossAmount is 14,3):
	// keep integer digits within 11 so every amount fits every target field.
	if d.Abs().GreaterThanOrEqual(decimal.New(1, 11)) {
		c.add(field, "is too large: at most 11 integer digits, got %s", quote(v))
		return decimal.Decimal{}, false
	}
	return d, true
}

// parseAmount parses a decimal string exactly. It is what validation
// accepts, and what the worker converts stored payloads with: one that no
// longer parses is an error, never a panic.
func parseAmount(field, v string) (decimal.Decimal, error) {
	if v == "" || len(v) > maxAmountChars || !isDecimalString(v) {
		return decimal.Decimal{}, fmt.Errorf("%s: not a decimal string: %q", field, v)
	}
	return decimal.NewFromString(v)
}

func isDecimalString(s string) bool {
	i := 0
	if s[0] == '-' || s[0] == '+' {
		i++
	}
	digits, point := 0, false
	for ; i < len(s); i++ {
		switch ch := s[i]; {
		case ch >= '0' && ch <= '9':
			digits++
		case ch == '.' && !point:
			point = true
		default:
			return false
		}
	}
	return digits > 0 && s[len(s)-1] != '.'
}

// checkIdempotencyKey validates a caller's idempotency key: 1..128
// printable ASCII characters (see checkASCII for why not more).
func (c *checker) checkIdempotencyKey(v string) {
	if v == "" {
		c.add("idempotency_key", "is required: choose a unique key per business document (1-%d printable ASCII characters) and reuse it when retrying the same submission", MaxIdempotencyKey)
		return
	}
	n := len(c.errs)
	c.checkText("idempotency_key", v, MaxIdempotencyKey, true)
	if len(c.errs) == n {
		c.checkASCII("idempotency_key", v)
	}
}

func itemField(i int, name string) string { return fmt.Sprintf("items[%d].%s", i, name) }

// ParseDate parses a validated YYYY-MM-DD date as UTC midnight.
func ParseDate(v string) (time.Time, error) { return time.Parse(dateLayout, v) }

// currencyDigits is how many fraction digits amounts in a currency carry
// (at most MaxFractionDigits; MaxFractionDigits for an unknown code).
func currencyDigits(code string) int {
	if d, ok := currency.GetDigits(code); ok {
		return min(int(d), MaxFractionDigits)
	}
	return MaxFractionDigits
}

// validAmount reports whether v is an amount that validation accepts with
// digits fraction digits, without reporting anything: for the rules across
// fields, which judge only amounts that are valid one by one.
func validAmount(v string, digits int) (decimal.Decimal, bool) {
	var c checker
	d, ok := c.checkAmount("", v, digits)
	return d, ok
}
