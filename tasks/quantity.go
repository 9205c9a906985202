package tasks

import (
	"slices"
	"strings"

	"github.com/shopspring/decimal"
)

// Units of measure sapq accepts, with the decimals a quantity in them may
// carry: SAP's ISO codes of the common units (T006, the decimals its
// rounding keeps). A unit outside the table is refused rather than posted
// with a guessed precision.
var unitDecimals = map[string]int{
	"PC": 0, "EA": 0, "ST": 0, "PAK": 0, "CS": 0, "PAL": 0,
	"KG": 3, "G": 3, "TO": 3, "LB": 3,
	"L": 3, "ML": 3, "M3": 3,
	"M": 3, "CM": 3, "MM": 3, "KM": 3, "M2": 3,
	"H": 2, "MIN": 2, "D": 2,
}

const (
	// LenUnit is the length of a unit of measure (MEINS, 3).
	LenUnit = 3
	// maxQuantityDecimals is the most decimals any unit allows.
	maxQuantityDecimals = 3
)

// Units lists the units of measure sapq accepts.
func Units() []string {
	out := make([]string, 0, len(unitDecimals))
	for u := range unitDecimals {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// checkUnit validates a unit and returns the decimals of its quantities.
func (c *checker) checkUnit(field, v string, required bool) int {
	if v == "" {
		if required {
			c.add(field, "is required (a unit of measure such as PC or KG)")
		}
		return maxQuantityDecimals
	}
	d, ok := unitDecimals[v]
	if !ok {
		c.add(field, "must be a unit of measure sapq knows, in upper case: %s; got %s", strings.Join(Units(), ", "), quote(v))
		return maxQuantityDecimals
	}
	return d
}

// checkQuantity parses a positive decimal quantity with at most the unit's
// decimals. Like amounts, it never goes through float64.
func (c *checker) checkQuantity(field, v string, decimals int) (decimal.Decimal, bool) {
	d, err := parseAmount(field, v)
	if err != nil {
		c.add(field, `must be a decimal string such as "10" or "2.5" (digits and an optional point; no sign, exponent or thousands separators), got %s`, quote(v))
		return decimal.Decimal{}, false
	}
	if strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+") || !d.IsPositive() {
		c.add(field, "must be greater than zero, got %s", quote(v))
		return decimal.Decimal{}, false
	}
	if -d.Exponent() > int32(decimals) {
		c.add(field, "must have at most %d decimals for its unit, got %s", decimals, v)
		return decimal.Decimal{}, false
	}
	if d.GreaterThanOrEqual(decimal.New(1, 10)) {
		c.add(field, "is too large: at most 10 integer digits, got %s", v)
		return decimal.Decimal{}, false
	}
	return d, true
}

// ParseQuantity parses a validated quantity string.
func ParseQuantity(v string) (decimal.Decimal, error) { return parseAmount("quantity", v) }
