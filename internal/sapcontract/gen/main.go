// Command gen derives the contract tables in testdata/sapcontract from SAP's
// published service definitions: for each OData V2 service (EDMX) its entity
// sets, entity types, properties (Edm type, MaxLength, Precision, Scale,
// nullability, creatability) and navigation properties; for each SOAP
// service (WSDL) its messages' elements, their order and occurrences, and
// the restrictions of their simple types (lengths, digits, patterns).
//
// The definitions are reference material kept outside the repository, and
// the tests never run this command; they read its output. Run it again when
// a definition changes or a new one is added:
//
//	go run ./internal/sapcontract/gen -specs /path/to/sap-specs -out testdata/sapcontract
package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sapq/sapq/internal/sapcontract"
)

func main() {
	specs := flag.String("specs", "", "directory of SAP service definitions (*.edmx, *.wsdl)")
	out := flag.String("out", "testdata/sapcontract", "directory the tables are written to")
	flag.Parse()
	if *specs == "" {
		fmt.Fprintln(os.Stderr, "usage: gen -specs DIR [-out DIR]")
		os.Exit(2)
	}
	if err := run(*specs, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(specs, out string) error {
	paths, err := filepath.Glob(filepath.Join(specs, "*"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	n := 0
	for _, p := range paths {
		var table any
		var name string
		switch strings.ToLower(filepath.Ext(p)) {
		case ".edmx":
			s, err := readEDMX(p)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			table, name = s, s.Name
		case ".wsdl":
			s, err := readWSDL(p)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			table, name = s, s.Name
		default:
			continue
		}
		data, err := marshal(table)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name+".json"), data, 0o644); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no .edmx or .wsdl files in %s", specs)
	}
	fmt.Printf("wrote %d tables to %s\n", n, out)
	return nil
}

// marshal writes a table with one property, element or simple type per
// line: compact, yet a change to one field is a one-line diff.
func marshal(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	write(&b, tree, 0)
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// write indents objects whose values are objects or lists of objects, and
// writes everything else on one line.
func write(b *bytes.Buffer, v any, depth int) {
	leaf := func(v any) bool {
		switch t := v.(type) {
		case map[string]any:
			for _, x := range t {
				if _, ok := x.(map[string]any); ok {
					return false
				}
				if l, ok := x.([]any); ok && len(l) > 0 {
					if _, ok := l[0].(map[string]any); ok {
						return false
					}
				}
			}
		case []any:
			for _, x := range t {
				if !leafObject(x) {
					return false
				}
			}
			return len(t) == 0
		}
		return true
	}
	indent := strings.Repeat("  ", depth+1)
	switch t := v.(type) {
	case map[string]any:
		if leaf(t) {
			compact(b, t)
			return
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteString("{\n")
		for i, k := range keys {
			b.WriteString(indent)
			compact(b, k)
			b.WriteString(": ")
			write(b, t[k], depth+1)
			if i < len(keys)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(strings.Repeat("  ", depth) + "}")
	case []any:
		if len(t) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteString("[\n")
		for i, x := range t {
			b.WriteString(indent)
			write(b, x, depth+1)
			if i < len(t)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(strings.Repeat("  ", depth) + "]")
	default:
		compact(b, t)
	}
}

func leafObject(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for _, x := range m {
		switch x.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

func compact(b *bytes.Buffer, v any) {
	data, _ := json.Marshal(v)
	b.Write(data)
}

// EDMX, by local names (encoding/xml matches a tag without a namespace
// against any namespace).
type edmx struct {
	Schemas []edmSchema `xml:"DataServices>Schema"`
}

type edmSchema struct {
	Namespace    string           `xml:"Namespace,attr"`
	EntityTypes  []edmEntityType  `xml:"EntityType"`
	Associations []edmAssociation `xml:"Association"`
	Containers   []struct {
		EntitySets []struct {
			Name       string `xml:"Name,attr"`
			EntityType string `xml:"EntityType,attr"`
		} `xml:"EntitySet"`
		FunctionImports []struct {
			Name       string `xml:"Name,attr"`
			HTTPMethod string `xml:"http://schemas.microsoft.com/ado/2007/08/dataservices/metadata HttpMethod,attr"`
			Parameters []struct {
				Name      string `xml:"Name,attr"`
				Type      string `xml:"Type,attr"`
				MaxLength string `xml:"MaxLength,attr"`
				Precision string `xml:"Precision,attr"`
				Scale     string `xml:"Scale,attr"`
				Nullable  string `xml:"Nullable,attr"`
			} `xml:"Parameter"`
		} `xml:"FunctionImport"`
	} `xml:"EntityContainer"`
}

type edmEntityType struct {
	Name       string `xml:"Name,attr"`
	Properties []struct {
		Name      string `xml:"Name,attr"`
		Type      string `xml:"Type,attr"`
		MaxLength string `xml:"MaxLength,attr"`
		Precision string `xml:"Precision,attr"`
		Scale     string `xml:"Scale,attr"`
		Nullable  string `xml:"Nullable,attr"`
		Creatable string `xml:"http://www.sap.com/Protocols/SAPData creatable,attr"`
	} `xml:"Property"`
	Navigation []struct {
		Name         string `xml:"Name,attr"`
		Relationship string `xml:"Relationship,attr"`
		ToRole       string `xml:"ToRole,attr"`
	} `xml:"NavigationProperty"`
}

type edmAssociation struct {
	Name string `xml:"Name,attr"`
	Ends []struct {
		Type         string `xml:"Type,attr"`
		Multiplicity string `xml:"Multiplicity,attr"`
		Role         string `xml:"Role,attr"`
	} `xml:"End"`
}

func readEDMX(path string) (*sapcontract.Service, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc edmx
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Schemas) == 0 {
		return nil, fmt.Errorf("no schema")
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	svc := &sapcontract.Service{Name: name, EntitySets: map[string]string{}, EntityTypes: map[string]sapcontract.EntityType{}}
	for _, s := range doc.Schemas {
		if svc.Namespace == "" {
			svc.Namespace = s.Namespace
		}
		local := func(qualified string) string { return strings.TrimPrefix(qualified, s.Namespace+".") }
		assocs := map[string]edmAssociation{}
		for _, a := range s.Associations {
			assocs[a.Name] = a
		}
		for _, c := range s.Containers {
			for _, es := range c.EntitySets {
				svc.EntitySets[es.Name] = local(es.EntityType)
			}
			for _, fi := range c.FunctionImports {
				if svc.FunctionImports == nil {
					svc.FunctionImports = map[string]sapcontract.FunctionImport{}
				}
				f := sapcontract.FunctionImport{HTTPMethod: fi.HTTPMethod, Parameters: map[string]sapcontract.Property{}}
				for _, p := range fi.Parameters {
					f.Parameters[p.Name] = sapcontract.Property{Type: p.Type, MaxLength: atoi(p.MaxLength),
						Precision: atoi(p.Precision), Scale: atoi(p.Scale), NotNull: p.Nullable == "false"}
				}
				svc.FunctionImports[fi.Name] = f
			}
		}
		for _, et := range s.EntityTypes {
			t := sapcontract.EntityType{Properties: map[string]sapcontract.Property{}, Navigation: map[string]sapcontract.Navigation{}}
			for _, p := range et.Properties {
				t.Properties[p.Name] = sapcontract.Property{
					Type:         p.Type,
					MaxLength:    atoi(p.MaxLength),
					Precision:    atoi(p.Precision),
					Scale:        atoi(p.Scale),
					NotNull:      p.Nullable == "false",
					NotCreatable: p.Creatable == "false",
				}
			}
			for _, n := range et.Navigation {
				a, ok := assocs[local(n.Relationship)]
				if !ok {
					return nil, fmt.Errorf("%s.%s: association %s not found", et.Name, n.Name, n.Relationship)
				}
				i := slices.IndexFunc(a.Ends, func(e struct {
					Type         string `xml:"Type,attr"`
					Multiplicity string `xml:"Multiplicity,attr"`
					Role         string `xml:"Role,attr"`
				}) bool {
					return e.Role == n.ToRole
				})
				if i < 0 {
					return nil, fmt.Errorf("%s.%s: role %s not in %s", et.Name, n.Name, n.ToRole, a.Name)
				}
				t.Navigation[n.Name] = sapcontract.Navigation{Type: local(a.Ends[i].Type), Many: a.Ends[i].Multiplicity == "*"}
			}
			svc.EntityTypes[et.Name] = t
		}
	}
	return svc, nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// WSDL types, by local names.
type wsdl struct {
	TargetNamespace string      `xml:"targetNamespace,attr"`
	Schemas         []xsdSchema `xml:"types>schema"`
}

type xsdSchema struct {
	TargetNamespace string          `xml:"targetNamespace,attr"`
	Elements        []xsdElement    `xml:"element"`
	ComplexTypes    []xsdComplex    `xml:"complexType"`
	SimpleTypes     []xsdSimpleType `xml:"simpleType"`
}

type xsdElement struct {
	Name      string `xml:"name,attr"`
	Type      string `xml:"type,attr"`
	MinOccurs string `xml:"minOccurs,attr"`
	MaxOccurs string `xml:"maxOccurs,attr"`
}

type xsdComplex struct {
	Name     string       `xml:"name,attr"`
	Sequence []xsdElement `xml:"sequence>element"`
	Simple   *struct {
		Extension struct {
			Base       string `xml:"base,attr"`
			Attributes []struct {
				Name string `xml:"name,attr"`
				Type string `xml:"type,attr"`
				Use  string `xml:"use,attr"`
				// Inline is an anonymous simple type in place of Type.
				Inline *xsdSimpleType `xml:"simpleType"`
			} `xml:"attribute"`
		} `xml:"extension"`
	} `xml:"simpleContent"`
}

type xsdFacet struct {
	Value string `xml:"value,attr"`
}

type xsdSimpleType struct {
	Name        string `xml:"name,attr"`
	Restriction struct {
		Base           string     `xml:"base,attr"`
		Length         *xsdFacet  `xml:"length"`
		MinLength      *xsdFacet  `xml:"minLength"`
		MaxLength      *xsdFacet  `xml:"maxLength"`
		TotalDigits    *xsdFacet  `xml:"totalDigits"`
		FractionDigits *xsdFacet  `xml:"fractionDigits"`
		Patterns       []xsdFacet `xml:"pattern"`
		Enumeration    []xsdFacet `xml:"enumeration"`
	} `xml:"restriction"`
}

func (f *xsdFacet) int() int {
	if f == nil {
		return 0
	}
	return atoi(f.Value)
}

// readWSDL keeps the types that the schema's global elements reach.
func readWSDL(path string) (*sapcontract.Schema, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc wsdl
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	// The service's messages are in the schema of the WSDL's own
	// namespace; others (SAP's global fault types) are not sent.
	i := slices.IndexFunc(doc.Schemas, func(s xsdSchema) bool { return s.TargetNamespace == doc.TargetNamespace })
	if i < 0 {
		return nil, fmt.Errorf("no schema for the namespace %s", doc.TargetNamespace)
	}
	x := doc.Schemas[i]
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	out := &sapcontract.Schema{Name: name, Namespace: x.TargetNamespace, Elements: map[string]string{},
		ComplexTypes: map[string]sapcontract.ComplexType{}, SimpleTypes: map[string]sapcontract.SimpleType{}}
	complexes := map[string]xsdComplex{}
	for _, c := range x.ComplexTypes {
		complexes[c.Name] = c
	}
	simples := map[string]xsdSimpleType{}
	for _, s := range x.SimpleTypes {
		simples[s.Name] = s
	}
	var visit func(typ string) error
	visit = func(typ string) error {
		if strings.HasPrefix(typ, "xsd:") {
			return nil
		}
		if _, done := out.ComplexTypes[typ]; done {
			return nil
		}
		if _, done := out.SimpleTypes[typ]; done {
			return nil
		}
		if s, ok := simples[typ]; ok {
			r := s.Restriction
			base, ok := strings.CutPrefix(r.Base, "xsd:")
			if !ok {
				return fmt.Errorf("simple type %s restricts %s; only built-in bases are supported", typ, r.Base)
			}
			st := sapcontract.SimpleType{Base: base, Length: r.Length.int(), MinLength: r.MinLength.int(), MaxLength: r.MaxLength.int(),
				TotalDigits: r.TotalDigits.int(), FractionDigits: r.FractionDigits.int()}
			for _, p := range r.Patterns {
				st.Patterns = append(st.Patterns, p.Value)
			}
			for _, e := range r.Enumeration {
				st.Enumeration = append(st.Enumeration, e.Value)
			}
			out.SimpleTypes[typ] = st
			return nil
		}
		c, ok := complexes[typ]
		if !ok {
			return fmt.Errorf("type %s is not defined", typ)
		}
		var ct sapcontract.ComplexType
		if c.Simple != nil {
			ct.Content = c.Simple.Extension.Base
			for _, a := range c.Simple.Extension.Attributes {
				at := a.Type
				if a.Inline != nil && at == "" {
					// Named after where it stands; no XSD name has "@".
					at = typ + "@" + a.Name
					inline := *a.Inline
					inline.Name = at
					simples[at] = inline
				}
				ct.Attributes = append(ct.Attributes, sapcontract.Attribute{Name: a.Name, Type: at, Required: a.Use == "required"})
			}
		}
		for _, e := range c.Sequence {
			el := sapcontract.Element{Name: e.Name, Type: e.Type, MinOccurs: 1, MaxOccurs: 1}
			if e.MinOccurs != "" {
				el.MinOccurs = atoi(e.MinOccurs)
			}
			switch e.MaxOccurs {
			case "":
			case "unbounded":
				el.MaxOccurs = -1
			default:
				el.MaxOccurs = atoi(e.MaxOccurs)
			}
			ct.Sequence = append(ct.Sequence, el)
		}
		out.ComplexTypes[typ] = ct
		if ct.Content != "" {
			if err := visit(ct.Content); err != nil {
				return err
			}
		}
		for _, a := range ct.Attributes {
			if err := visit(a.Type); err != nil {
				return err
			}
		}
		for _, e := range ct.Sequence {
			if err := visit(e.Type); err != nil {
				return fmt.Errorf("%s/%s: %w", typ, e.Name, err)
			}
		}
		return nil
	}
	for _, e := range x.Elements {
		if e.Type == "" {
			continue // a fault message with an inline type; sapq sends none
		}
		out.Elements[e.Name] = e.Type
		if err := visit(e.Type); err != nil {
			return nil, fmt.Errorf("element %s: %w", e.Name, err)
		}
	}
	return out, nil
}
