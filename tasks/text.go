package tasks

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/unicode/runenames"
)

// maxQuoted is how many characters of a rejected value an error message
// quotes. An agent needs enough to recognise the value, and a megabyte
// argument must not come back as a multi-megabyte answer.
const maxQuoted = 32

// quote returns v quoted for an error message, cut to its first maxQuoted
// characters with its length when longer.
func quote(v string) string {
	n := utf8.RuneCountInString(v)
	if n <= maxQuoted {
		return strconv.Quote(v)
	}
	end, count := 0, 0
	for end = range v {
		if count == maxQuoted {
			break
		}
		count++
	}
	return fmt.Sprintf("%s… (%d characters)", strconv.Quote(v[:end]), n)
}

// describeRune names a character in an error message: 'a' for printable
// ASCII, otherwise its code point and Unicode name, such as U+0420 CYRILLIC
// CAPITAL LETTER ER, and the ASCII character it stands for where Unicode's
// compatibility mapping has one (full-width letters).
func describeRune(r rune) string {
	if r >= 0x21 && r < 0x7f {
		return strconv.QuoteRune(r)
	}
	s := fmt.Sprintf("%U", r)
	if name := runenames.Name(r); name != "" {
		s += " " + name
	}
	if r >= 0x80 {
		if k := norm.NFKC.String(string(r)); len(k) == 1 && k[0] >= 0x21 && k[0] < 0x7f {
			s += fmt.Sprintf(" (a look-alike of %q)", k)
		}
	}
	return s
}

// firstNonASCII returns the first character of v outside printable ASCII
// (space to tilde) and its 1-based position, or ok=false.
func firstNonASCII(v string) (r rune, pos int, ok bool) {
	pos = 0
	for _, r := range v {
		pos++
		if r < 0x20 || r >= 0x7f {
			return r, pos, true
		}
	}
	return 0, 0, false
}

// badByte is the first byte of an invalid UTF-8 sequence and its offset.
type badByte struct {
	at int64
	b  byte
}

// invalidUTF8 returns the byte offsets of the invalid UTF-8 sequences in
// raw, at most limit of them. encoding/json replaces each with U+FFFD while
// decoding, which would make "K\xff" and "K\xfe" the same idempotency key:
// the raw bytes are checked before anything is decoded.
func invalidUTF8(raw []byte, limit int) []badByte {
	var bad []badByte
	for i := 0; i < len(raw) && len(bad) < limit; {
		if raw[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 {
			bad = append(bad, badByte{at: int64(i), b: raw[i]})
		}
		i += size
	}
	return bad
}
