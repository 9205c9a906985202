// Package sapcontract holds what SAP's published service definitions say
// about the requests sapq sends (entity types, property types and lengths
// of OData services; element names, order and lengths of SOAP messages) and
// checks request bodies against it.
//
// The tables in testdata/sapcontract are derived from SAP's EDMX and WSDL
// files by the generator in ./gen, which the tests never run (the service
// definitions are not part of the repository). To regenerate them:
//
//	go run ./internal/sapcontract/gen -specs /path/to/sap-specs -out testdata/sapcontract
package sapcontract

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Service is one OData V2 service: its entity sets and the types behind them.
type Service struct {
	Name        string                `json:"service"`
	Namespace   string                `json:"namespace"`
	EntitySets  map[string]string     `json:"entitySets"` // entity set -> entity type
	EntityTypes map[string]EntityType `json:"entityTypes"`
	// FunctionImports are the service's function imports (actions such as
	// Cancel), by name.
	FunctionImports map[string]FunctionImport `json:"functionImports,omitempty"`
}

// FunctionImport is an OData V2 function import: the HTTP method it takes
// (m:HttpMethod) and its parameters, which a client sends as URI literals
// in the query.
type FunctionImport struct {
	HTTPMethod string              `json:"httpMethod"`
	Parameters map[string]Property `json:"parameters"`
}

// EntityType is an OData entity type.
type EntityType struct {
	Properties map[string]Property   `json:"properties"`
	Navigation map[string]Navigation `json:"navigation,omitempty"`
}

// Property is one structural property, as the EDMX declares it.
type Property struct {
	Type      string `json:"type"` // Edm.String, Edm.Decimal, ...
	MaxLength int    `json:"maxLength,omitempty"`
	Precision int    `json:"precision,omitempty"`
	Scale     int    `json:"scale,omitempty"`
	// NotNull is Nullable="false".
	NotNull bool `json:"notNull,omitempty"`
	// NotCreatable is sap:creatable="false": SAP assigns it.
	NotCreatable bool `json:"notCreatable,omitempty"`
}

// Navigation is a navigation property: the entity type it leads to and
// whether to many.
type Navigation struct {
	Type string `json:"type"`
	Many bool   `json:"many,omitempty"`
}

// Schema is the XML schema of a SOAP service's messages.
type Schema struct {
	Name      string `json:"wsdl"`
	Namespace string `json:"namespace"`
	// Elements are the global elements: message name -> complex type.
	Elements     map[string]string      `json:"elements"`
	ComplexTypes map[string]ComplexType `json:"complexTypes"`
	SimpleTypes  map[string]SimpleType  `json:"simpleTypes"`
}

// ComplexType is either a sequence of child elements or, with Content set,
// simple content with attributes (an amount with its currencyCode).
type ComplexType struct {
	Sequence   []Element   `json:"sequence,omitempty"`
	Content    string      `json:"content,omitempty"`
	Attributes []Attribute `json:"attributes,omitempty"`
}

// Element is one child element of a sequence. MaxOccurs -1 is unbounded.
type Element struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	MinOccurs int    `json:"minOccurs"`
	MaxOccurs int    `json:"maxOccurs"`
}

// Attribute is an attribute of simple content.
type Attribute struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required,omitempty"`
}

// SimpleType is a restriction of a built-in XML schema type. Types named
// "xsd:..." are the built-ins themselves.
type SimpleType struct {
	Base           string   `json:"base"` // token, string, decimal, date, dateTime, boolean, ...
	Length         int      `json:"length,omitempty"`
	MinLength      int      `json:"minLength,omitempty"`
	MaxLength      int      `json:"maxLength,omitempty"`
	TotalDigits    int      `json:"totalDigits,omitempty"`
	FractionDigits int      `json:"fractionDigits,omitempty"`
	Patterns       []string `json:"patterns,omitempty"`
	Enumeration    []string `json:"enumeration,omitempty"`
}

// Contracts are every service definition in a directory of tables.
type Contracts struct {
	OData map[string]*Service // by service name
	SOAP  map[string]*Schema  // by WSDL name
}

// Load reads every table in dir.
func Load(dir string) (*Contracts, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("sapcontract: no tables in %s", dir)
	}
	c := &Contracts{OData: map[string]*Service{}, SOAP: map[string]*Schema{}}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var probe struct {
			Service string `json:"service"`
			WSDL    string `json:"wsdl"`
		}
		if err := json.Unmarshal(data, &probe); err != nil {
			return nil, fmt.Errorf("sapcontract: %s: %w", p, err)
		}
		switch {
		case probe.Service != "":
			var s Service
			if err := json.Unmarshal(data, &s); err != nil {
				return nil, fmt.Errorf("sapcontract: %s: %w", p, err)
			}
			c.OData[s.Name] = &s
		case probe.WSDL != "":
			var s Schema
			if err := json.Unmarshal(data, &s); err != nil {
				return nil, fmt.Errorf("sapcontract: %s: %w", p, err)
			}
			c.SOAP[s.Name] = &s
		default:
			return nil, fmt.Errorf("sapcontract: %s is neither a service nor a schema table", p)
		}
	}
	return c, nil
}

// odataPrefix is where SAP Gateway publishes OData V2 services.
const odataPrefix = "/sap/opu/odata/sap/"

// ODataFunction resolves an OData V2 path such as
// /sap/opu/odata/sap/API_X/Cancel to its service and function import; ok is
// false when the path names no function import.
func (c *Contracts) ODataFunction(path string) (svc *Service, name string, ok bool) {
	rest, found := strings.CutPrefix(path, odataPrefix)
	if !found {
		return nil, "", false
	}
	service, name, found := strings.Cut(rest, "/")
	if !found {
		return nil, "", false
	}
	svc, found = c.OData[service]
	if !found {
		return nil, "", false
	}
	if _, found = svc.FunctionImports[name]; !found {
		return nil, "", false
	}
	return svc, name, true
}

// ODataTarget resolves an OData V2 path such as
// /sap/opu/odata/sap/API_X/A_Entity to its service and entity type.
func (c *Contracts) ODataTarget(path string) (*Service, string, error) {
	rest, ok := strings.CutPrefix(path, odataPrefix)
	if !ok {
		return nil, "", fmt.Errorf("%s is not an OData V2 path", path)
	}
	service, set, ok := strings.Cut(rest, "/")
	if !ok || set == "" {
		return nil, "", fmt.Errorf("%s names no entity set", path)
	}
	svc, ok := c.OData[service]
	if !ok {
		return nil, "", fmt.Errorf("no service definition for %s", service)
	}
	if i := strings.IndexByte(set, '('); i >= 0 {
		set = set[:i] // A_Entity(Key='1')
	}
	et, ok := svc.EntitySets[set]
	if !ok {
		return nil, "", fmt.Errorf("service %s has no entity set %s", service, set)
	}
	return svc, et, nil
}
