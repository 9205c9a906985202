package sapcontract

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

const soapEnvelopeNS = "http://schemas.xmlsoap.org/soap/envelope/"

// node is one XML element of a message.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	children []*node
	text     strings.Builder
}

func parseXML(body []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	var stack []*node
	var root *node
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name}
			for _, a := range t.Attr {
				if a.Name.Space != "xmlns" && a.Name.Local != "xmlns" {
					n.attrs = append(n.attrs, a)
				}
			}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no element")
	}
	return root, nil
}

// CheckSOAPBody checks a SOAP 1.1 request against the schema: the body's
// one element must be a global element of the schema's namespace; below it
// (the schema qualifies only global elements) every element must be
// unqualified, declared in its parent's type, in the sequence's order, as
// often as declared, with every required one present; every value within
// its type's length, digits and pattern.
func (s *Schema) CheckSOAPBody(body []byte) []string {
	env, err := parseXML(body)
	if err != nil {
		return []string{"body is not XML: " + err.Error()}
	}
	if env.name != (xml.Name{Space: soapEnvelopeNS, Local: "Envelope"}) {
		return []string{fmt.Sprintf("root element is %s, not a SOAP 1.1 Envelope", env.name.Local)}
	}
	var soapBody *node
	for _, c := range env.children {
		if c.name == (xml.Name{Space: soapEnvelopeNS, Local: "Body"}) {
			soapBody = c
		}
	}
	if soapBody == nil || len(soapBody.children) != 1 {
		return []string{"the Envelope needs a Body with exactly one element"}
	}
	msg := soapBody.children[0]
	var out []string
	typ, ok := s.Elements[msg.name.Local]
	switch {
	case !ok:
		out = append(out, fmt.Sprintf("%s is not a message of %s", msg.name.Local, s.Name))
	case msg.name.Space != s.Namespace:
		out = append(out, fmt.Sprintf("%s must be in namespace %s, is in %q", msg.name.Local, s.Namespace, msg.name.Space))
	default:
		s.checkElement(&out, msg.name.Local, typ, msg)
	}
	return out
}

func (s *Schema) checkElement(out *[]string, path, typ string, n *node) {
	if ct, ok := s.ComplexTypes[typ]; ok {
		if ct.Content != "" {
			s.checkSimpleContent(out, path, ct, n)
		} else {
			s.checkSequence(out, path, typ, ct, n)
		}
		return
	}
	if len(n.children) > 0 {
		*out = append(*out, fmt.Sprintf("%s: type %s has no child elements", path, typ))
		return
	}
	if len(n.attrs) > 0 {
		*out = append(*out, fmt.Sprintf("%s: type %s has no attributes", path, typ))
	}
	if msg := s.checkValue(typ, n.text.String()); msg != "" {
		*out = append(*out, path+": "+msg)
	}
}

func (s *Schema) checkSequence(out *[]string, path, typ string, ct ComplexType, n *node) {
	if strings.TrimSpace(n.text.String()) != "" {
		*out = append(*out, fmt.Sprintf("%s: type %s holds elements, not text", path, typ))
	}
	counts := make([]int, len(ct.Sequence))
	pos := 0
	for _, c := range n.children {
		at := path + "/" + c.name.Local
		if c.name.Space != "" {
			*out = append(*out, fmt.Sprintf("%s: must be unqualified (the schema qualifies only global elements), is in %q", at, c.name.Space))
		}
		i := slices.IndexFunc(ct.Sequence, func(e Element) bool { return e.Name == c.name.Local })
		if i < 0 {
			*out = append(*out, fmt.Sprintf("%s: type %s has no element %s", at, typ, c.name.Local))
			continue
		}
		if i < pos {
			*out = append(*out, fmt.Sprintf("%s: out of order: the sequence of %s puts it before %s", at, typ, ct.Sequence[pos].Name))
		}
		pos = max(pos, i)
		counts[i]++
		s.checkElement(out, at, ct.Sequence[i].Type, c)
	}
	for i, e := range ct.Sequence {
		switch {
		case counts[i] < e.MinOccurs:
			*out = append(*out, fmt.Sprintf("%s: required element %s is missing", path, e.Name))
		case e.MaxOccurs >= 0 && counts[i] > e.MaxOccurs:
			*out = append(*out, fmt.Sprintf("%s: %s occurs %d times, at most %d allowed", path, e.Name, counts[i], e.MaxOccurs))
		}
	}
}

func (s *Schema) checkSimpleContent(out *[]string, path string, ct ComplexType, n *node) {
	if len(n.children) > 0 {
		*out = append(*out, fmt.Sprintf("%s: simple content has no child elements", path))
	}
	seen := map[string]bool{}
	for _, a := range n.attrs {
		i := slices.IndexFunc(ct.Attributes, func(d Attribute) bool { return d.Name == a.Name.Local })
		if i < 0 || a.Name.Space != "" {
			*out = append(*out, fmt.Sprintf("%s: no attribute %s", path, a.Name.Local))
			continue
		}
		seen[a.Name.Local] = true
		if msg := s.checkValue(ct.Attributes[i].Type, a.Value); msg != "" {
			*out = append(*out, fmt.Sprintf("%s/@%s: %s", path, a.Name.Local, msg))
		}
	}
	for _, d := range ct.Attributes {
		if d.Required && !seen[d.Name] {
			*out = append(*out, fmt.Sprintf("%s: required attribute %s is missing", path, d.Name))
		}
	}
	if msg := s.checkValue(ct.Content, n.text.String()); msg != "" {
		*out = append(*out, path+": "+msg)
	}
}

var (
	xsdDecimal  = regexp.MustCompile(`^[+-]?(\d*)(?:\.(\d*))?$`)
	xsdDate     = regexp.MustCompile(`^-?\d{4,}-\d{2}-\d{2}(Z|[+-]\d{2}:\d{2})?$`)
	xsdDateTime = regexp.MustCompile(`^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$`)
	xsdBoolean  = regexp.MustCompile(`^(true|false|1|0)$`)
)

// checkValue returns what is wrong with a text for a simple type, or "".
func (s *Schema) checkValue(typ, text string) string {
	st, ok := s.SimpleTypes[typ]
	if !ok {
		base, builtin := strings.CutPrefix(typ, "xsd:")
		if !builtin {
			return "unknown type " + typ
		}
		st = SimpleType{Base: base}
	}
	v := text
	if st.Base != "string" {
		// Every built-in type but string collapses white space.
		v = strings.Join(strings.Fields(text), " ")
	}
	n := utf8.RuneCountInString(v)
	switch {
	case st.Length > 0 && n != st.Length:
		return fmt.Sprintf("%q has %d characters, type %s needs %d", v, n, typ, st.Length)
	case st.MaxLength > 0 && n > st.MaxLength:
		return fmt.Sprintf("%q has %d characters, type %s allows %d", v, n, typ, st.MaxLength)
	case n < st.MinLength:
		return fmt.Sprintf("%q has %d characters, type %s needs at least %d", v, n, typ, st.MinLength)
	case len(st.Enumeration) > 0 && !slices.Contains(st.Enumeration, v):
		return fmt.Sprintf("%q is not one of %s's values %q", v, typ, st.Enumeration)
	}
	for _, p := range st.Patterns {
		re, err := regexp.Compile("^(?:" + p + ")$")
		if err != nil {
			return fmt.Sprintf("type %s: pattern %q: %v", typ, p, err)
		}
		if !re.MatchString(v) {
			return fmt.Sprintf("%q does not match type %s's pattern %s", v, typ, p)
		}
	}
	switch st.Base {
	case "decimal":
		m := xsdDecimal.FindStringSubmatch(v)
		if m == nil || m[1]+m[2] == "" {
			return fmt.Sprintf("%q is not a decimal", v)
		}
		digits := len(strings.TrimLeft(m[1], "0")) + len(strings.TrimRight(m[2], "0"))
		if st.TotalDigits > 0 && digits > st.TotalDigits {
			return fmt.Sprintf("%q has %d digits, type %s allows %d", v, digits, typ, st.TotalDigits)
		}
		if frac := len(strings.TrimRight(m[2], "0")); frac > st.FractionDigits && st.FractionDigits > 0 {
			return fmt.Sprintf("%q has %d fraction digits, type %s allows %d", v, frac, typ, st.FractionDigits)
		}
	case "date":
		if !xsdDate.MatchString(v) {
			return fmt.Sprintf("%q is not an xsd:date (YYYY-MM-DD)", v)
		}
	case "dateTime":
		if !xsdDateTime.MatchString(v) {
			return fmt.Sprintf("%q is not an xsd:dateTime", v)
		}
	case "boolean":
		if !xsdBoolean.MatchString(v) {
			return fmt.Sprintf("%q is not an xsd:boolean", v)
		}
	}
	return ""
}
