package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// odataService describes one OData V2 service the simulator exposes: its
// entity sets, which are read with the query options SAP Gateway supports
// and some of which take creates through the posting pipeline, and its
// function imports. One generic handler serves every service.
type odataService struct {
	name        string // technical service name, e.g. API_SUPPLIERINVOICE_PROCESS_SRV
	path        string // service root without trailing slash
	componentID string // application component reported in errors
	entitySets  []*entitySet
	// functions are the service's function imports by name; each is a
	// posting (POST, through the posting pipeline) of kind functionKinds[name].
	functions map[string]func(s *Server, w http.ResponseWriter, r *http.Request, body []byte)
	// functionKinds is the kind of document each function import posts.
	functionKinds map[string]Kind
}

// entitySet describes an entity set well enough to serve queries on it.
type entitySet struct {
	name     string
	typeName string   // EntityType name, e.g. A_SupplierInvoiceType
	keys     []string // key properties, in key predicate order
	navs     []string // navigation properties ($expand / $select-able)
	// props lists all structural properties; $filter and $select are checked
	// against it.
	props []string
	// rows lists the set's entities (read under the simulator's lock).
	rows func(s *Server, r *http.Request, svc *odataService, qo queryOptions) []object
	// create, when set, posts a deep insert of kind through the posting
	// pipeline; without it the set is read-only.
	create func(s *Server, w http.ResponseWriter, r *http.Request, body []byte)
	kind   Kind
	// objects names what SAP's enqueue locks while it processes a create
	// with this body (see enqueue.go); nil for none. A body it cannot read
	// locks nothing: the create refuses it anyway.
	objects func(body []byte) []string
}

// mount serves the service at its path.
func (svc *odataService) mount(s *Server, mux *http.ServeMux) {
	h := func(w http.ResponseWriter, r *http.Request) { s.serveOData(w, r, svc) }
	mux.HandleFunc(svc.path, h)
	mux.HandleFunc(svc.path+"/", h)
}

// serveOData handles CSRF and dispatches a request within an OData service.
func (s *Server) serveOData(w http.ResponseWriter, r *http.Request, svc *odataService) {
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, svc.path), "/")
	// SAP hands out a token on any GET/HEAD that asks for one, typically the
	// service root.
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && isFetch(r) {
		s.issueCSRFToken(w, r)
	}
	if isModifying(r.Method) && !s.checkCSRF(w, r) {
		return
	}
	switch rest {
	case "":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.writeODataError(w, http.StatusMethodNotAllowed, svc, msgMethodNotAllowed(r.Method))
			return
		}
		serveServiceDocument(w, r, svc)
		return
	case "$metadata":
		serveMetadata(w, svc)
		return
	}
	name, pred, _ := strings.Cut(rest, "(")
	if pred != "" {
		pred = "(" + pred
	}
	if fn, ok := svc.functions[name]; ok && pred == "" {
		if r.Method != http.MethodPost {
			s.writeODataError(w, http.StatusMethodNotAllowed, svc, msgMethodNotAllowed(r.Method))
			return
		}
		s.servePosting(w, r, svc, svc.functionKinds[name], nil, func(w http.ResponseWriter, r *http.Request, body []byte) { fn(s, w, r, body) })
		return
	}
	for _, es := range svc.entitySets {
		if es.name != name {
			continue
		}
		if r.Method == http.MethodPost && pred == "" && es.create != nil {
			s.servePosting(w, r, svc, es.kind, es.objects, func(w http.ResponseWriter, r *http.Request, body []byte) { es.create(s, w, r, body) })
			return
		}
		s.serveReadOnly(w, r, svc, es, pred, func(qo queryOptions) []object {
			s.mu.Lock()
			defer s.mu.Unlock()
			return es.rows(s, r, svc, qo)
		})
		return
	}
	s.writeODataError(w, http.StatusNotFound, svc, msgNotFound(name))
}

func (es *entitySet) hasProp(name string) bool {
	for _, p := range es.props {
		if p == name {
			return true
		}
	}
	return false
}

func (es *entitySet) hasNav(name string) bool {
	for _, n := range es.navs {
		if n == name {
			return true
		}
	}
	return false
}

// keyPredicate renders the key of an entity the way SAP Gateway does in URIs:
// ('v') for a single key, (K1='v1',K2='v2') for compound keys.
func (es *entitySet) keyPredicate(o object) string {
	if len(es.keys) == 1 {
		v, _ := o.get(es.keys[0])
		return "(" + quoteLiteral(fmt.Sprint(v)) + ")"
	}
	parts := make([]string, len(es.keys))
	for i, k := range es.keys {
		v, _ := o.get(k)
		parts[i] = k + "=" + quoteLiteral(fmt.Sprint(v))
	}
	return "(" + strings.Join(parts, ",") + ")"
}

// field and object give JSON objects a fixed property order (__metadata first, then
// properties in EDMX order), which a map cannot.
type field struct {
	name  string
	value any
}

type object []field

// MarshalJSON writes the fields in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (o object) get(name string) (any, bool) {
	for _, f := range o {
		if f.name == name {
			return f.value, true
		}
	}
	return nil, false
}

// sapMessage is a T100 message: class/number such as "F5/201" and its text.
type sapMessage struct {
	Code   string
	Text   string
	Target string // property the message refers to, if any
}

// typeID renders the code the way SOAP logs do: "201(F5)".
func (m sapMessage) typeID() string {
	class, number, ok := strings.Cut(m.Code, "/")
	if !ok {
		return m.Code
	}
	return number + "(" + class + ")"
}

// OData V2 error body as SAP Gateway writes it.
type odataError struct {
	Error odataErrorInner `json:"error"`
}

type odataErrorInner struct {
	Code       string           `json:"code"`
	Message    odataErrorText   `json:"message"`
	InnerError odataInnerDetail `json:"innererror"`
}

type odataErrorText struct {
	Lang  string `json:"lang"`
	Value string `json:"value"`
}

type odataInnerDetail struct {
	Application   odataApplication   `json:"application"`
	TransactionID string             `json:"transactionid"`
	Timestamp     string             `json:"timestamp"`
	ErrorDetails  []odataErrorDetail `json:"errordetails"`
}

type odataApplication struct {
	ComponentID      string `json:"component_id"`
	ServiceNamespace string `json:"service_namespace"`
	ServiceID        string `json:"service_id"`
	ServiceVersion   string `json:"service_version"`
}

type odataErrorDetail struct {
	Code        string `json:"code"`
	Message     string `json:"message"`
	PropertyRef string `json:"propertyref"`
	Severity    string `json:"severity"`
	Target      string `json:"target"`
}

// readDeepInsert checks a create's request as SAP's gateway does before the
// service sees it: the content type, the body's syntax (an unknown property
// is an error, as in SAP), then every property's length. When one fails it
// answers the request and returns false.
func (s *Server) readDeepInsert(w http.ResponseWriter, r *http.Request, svc *odataService, body []byte, p interface{ checkLengths() error }) bool {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		s.writeODataError(w, http.StatusUnsupportedMediaType, svc, msgSyntax("content type must be application/json"))
		return false
	}
	if err := strictUnmarshal(body, p); err != nil {
		s.writeODataError(w, http.StatusBadRequest, svc, msgSyntax(""), msgSyntax(err.Error()))
		return false
	}
	if err := p.checkLengths(); err != nil {
		s.writeODataError(w, http.StatusBadRequest, svc, msgSyntax(err.Error()))
		return false
	}
	return true
}

// strictUnmarshal decodes a request body as SAP's gateway reads one: a
// property the entity type does not have is an error.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// writeODataError answers with an OData V2 error; the first message is the main one,
// all of them are listed in errordetails.
func (s *Server) writeODataError(w http.ResponseWriter, status int, svc *odataService, msgs ...sapMessage) {
	main := msgs[0]
	details := make([]odataErrorDetail, len(msgs))
	for i, m := range msgs {
		details[i] = odataErrorDetail{Code: m.Code, Message: m.Text, PropertyRef: m.Target, Severity: "error", Target: m.Target}
	}
	body := odataError{Error: odataErrorInner{
		Code:    main.Code,
		Message: odataErrorText{Lang: "en", Value: main.Text},
		InnerError: odataInnerDetail{
			Application: odataApplication{
				ComponentID:      svc.componentID,
				ServiceNamespace: "/SAP/",
				ServiceID:        svc.name,
				ServiceVersion:   "0001",
			},
			TransactionID: transactionID(),
			Timestamp:     s.opts.Now().UTC().Format("20060102150405.0000000"),
			ErrorDetails:  details,
		},
	}}
	writeJSON(w, status, body)
}

// transactionID is a 32 hex digit id like SAP's CRM/Gateway transaction ids.
func transactionID() string {
	u := uuid.New()
	return strings.ToUpper(strings.ReplaceAll(u.String(), "-", ""))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types are marshalled; failing here is a bug.
		panic(fmt.Sprintf("sim: marshal response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("DataServiceVersion", "2.0")
	w.WriteHeader(status)
	w.Write(b)
}

// errSyntax is the Gateway's answer to a request body it cannot deserialize.
func msgSyntax(detail string) sapMessage {
	text := "The server is refusing to process the request because the entity has a syntax error"
	if detail != "" {
		text += ": " + detail
	}
	return sapMessage{Code: "SY/530", Text: text}
}

func msgNotFound(segment string) sapMessage {
	return sapMessage{Code: "/IWBEP/CM_MGW_RT/021", Text: fmt.Sprintf("Resource not found for segment '%s'", segment)}
}

func msgBadQuery(format string, args ...any) sapMessage {
	return sapMessage{Code: "/IWBEP/CM_MGW_RT/022", Text: fmt.Sprintf(format, args...)}
}

func msgMethodNotAllowed(method string) sapMessage {
	return sapMessage{Code: "/IWBEP/CM_MGW_RT/008", Text: fmt.Sprintf("Method '%s' not allowed for this resource", method)}
}

// --- $filter -------------------------------------------------------------------------

// filterClause is one "Property eq literal" comparison. The simulator supports what
// look-up clients need: eq comparisons joined by and, optionally parenthesised.
type filterClause struct {
	prop string
	lit  literal
}

type literal struct {
	typ  string // "" for a quoted string, "bare" for numbers/booleans/null, else the prefix (datetime, guid, ...)
	text string // unescaped text
}

type token struct {
	kind string // "ident", "string", "typed", "bare", "(", ")"
	text string
	typ  string // for "typed": the literal prefix
}

// lexFilter splits a $filter expression into tokens. String literals follow OData:
// enclosed in single quotes, a quote inside doubled ('O”Brien').
func lexFilter(s string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')':
			toks = append(toks, token{kind: string(c)})
			i++
		case c == '\'':
			text, n, err := lexString(s[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: "string", text: text})
			i += n
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t()'", rune(s[j])) {
				j++
			}
			word := s[i:j]
			if j < len(s) && s[j] == '\'' { // typed literal such as datetime'2026-11-25T00:00:00'
				text, n, err := lexString(s[j:])
				if err != nil {
					return nil, err
				}
				toks = append(toks, token{kind: "typed", text: text, typ: strings.ToLower(word)})
				i = j + n
				continue
			}
			kind := "bare"
			if isIdentifier(word) {
				kind = "ident"
			}
			toks = append(toks, token{kind: kind, text: word})
			i = j
		}
	}
	return toks, nil
}

// lexString reads a quoted literal at the start of s, returning its text and length.
func lexString(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '\'' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		return b.String(), i + 1, nil
	}
	return "", 0, errors.New("unterminated string literal")
}

func isIdentifier(w string) bool {
	if w == "" || !(w[0] == '_' || (w[0]|0x20 >= 'a' && w[0]|0x20 <= 'z')) {
		return false
	}
	for _, c := range w {
		if !(c == '_' || c == '/' || (c|0x20 >= 'a' && c|0x20 <= 'z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// parseFilter parses "A eq 'x' and (B eq 'y')" into clauses; other operators are
// rejected rather than silently mis-evaluated.
func parseFilter(s string) ([]filterClause, error) {
	toks, err := lexFilter(s)
	if err != nil {
		return nil, err
	}
	var clauses []filterClause
	i := 0
	for {
		depth := 0
		for i < len(toks) && toks[i].kind == "(" {
			depth++
			i++
		}
		if i+3 > len(toks) {
			return nil, fmt.Errorf("incomplete expression")
		}
		prop, op, val := toks[i], toks[i+1], toks[i+2]
		if prop.kind != "ident" {
			return nil, fmt.Errorf("property name expected, found %q", prop.text)
		}
		if op.kind != "ident" || !strings.EqualFold(op.text, "eq") {
			return nil, fmt.Errorf("operator %q not supported (only eq)", op.text)
		}
		var lit literal
		switch val.kind {
		case "string":
			lit = literal{text: val.text}
		case "typed":
			lit = literal{typ: val.typ, text: val.text}
		case "bare", "ident":
			lit = literal{typ: "bare", text: val.text}
		default:
			return nil, fmt.Errorf("literal expected after %s eq", prop.text)
		}
		clauses = append(clauses, filterClause{prop: prop.text, lit: lit})
		i += 3
		for ; depth > 0; depth-- {
			if i >= len(toks) || toks[i].kind != ")" {
				return nil, fmt.Errorf("missing closing parenthesis")
			}
			i++
		}
		if i == len(toks) {
			return clauses, nil
		}
		if toks[i].kind != "ident" || !strings.EqualFold(toks[i].text, "and") {
			return nil, fmt.Errorf("%q not supported (clauses must be joined by and)", toks[i].text)
		}
		i++
	}
}

// matches compares the entity's property with the clause literal.
func (c filterClause) matches(o object) bool {
	v, ok := o.get(c.prop)
	if !ok {
		return false
	}
	var have string
	switch x := v.(type) {
	case string:
		have = x
	case bool:
		have = strconv.FormatBool(x)
	default:
		return false
	}
	switch c.lit.typ {
	case "":
		return have == c.lit.text
	case "bare":
		hd, err1 := decimal.NewFromString(have)
		ld, err2 := decimal.NewFromString(c.lit.text)
		if err1 == nil && err2 == nil {
			return hd.Equal(ld)
		}
		return strings.EqualFold(have, c.lit.text)
	case "datetime", "datetimeoffset":
		want, err := parseEdmDateTime(c.lit.text)
		if err != nil {
			return false
		}
		got, err := parseEdmDateTime(have)
		return err == nil && got.Equal(want)
	case "guid":
		return strings.EqualFold(have, c.lit.text)
	}
	return false
}

// quoteLiteral renders s as an OData string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// parseKeyPredicate parses "(K1='v1',K2='v2')" or "('v')" into values by key name.
func parseKeyPredicate(pred string, es *entitySet) (map[string]string, error) {
	if !strings.HasPrefix(pred, "(") || !strings.HasSuffix(pred, ")") {
		return nil, fmt.Errorf("malformed key predicate %q", pred)
	}
	inner := pred[1 : len(pred)-1]
	vals := map[string]string{}
	for inner != "" {
		name := ""
		if !strings.HasPrefix(inner, "'") {
			n, rest, ok := strings.Cut(inner, "=")
			if !ok {
				return nil, fmt.Errorf("malformed key predicate %q", pred)
			}
			name, inner = strings.TrimSpace(n), strings.TrimSpace(rest)
		} else if len(es.keys) == 1 {
			name = es.keys[0]
		}
		if !strings.HasPrefix(inner, "'") {
			return nil, fmt.Errorf("key %s must be a string literal", name)
		}
		text, n, err := lexString(inner)
		if err != nil {
			return nil, err
		}
		vals[name] = text
		inner = strings.TrimSpace(inner[n:])
		if inner != "" {
			if inner[0] != ',' {
				return nil, fmt.Errorf("malformed key predicate %q", pred)
			}
			inner = strings.TrimSpace(inner[1:])
		}
	}
	for _, k := range es.keys {
		if _, ok := vals[k]; !ok {
			return nil, fmt.Errorf("key property %s missing", k)
		}
	}
	if len(vals) != len(es.keys) {
		return nil, fmt.Errorf("unexpected key properties in %q", pred)
	}
	return vals, nil
}

// --- query options -------------------------------------------------------------------

type queryOptions struct {
	filter      []filterClause
	selects     []string // nil = all
	expand      map[string]bool
	top         int // -1 = no limit
	skip        int
	inlineCount bool
}

// parseQuery reads the system query options the simulator supports. $format is
// accepted but the answer is always JSON; $orderby is ignored (rows come in posting
// order, which is key order).
func parseQuery(q url.Values, es *entitySet) (queryOptions, error) {
	opts := queryOptions{top: -1, expand: map[string]bool{}}
	if f := strings.TrimSpace(q.Get("$filter")); f != "" {
		clauses, err := parseFilter(f)
		if err != nil {
			return opts, fmt.Errorf("invalid filter expression '%s': %v", f, err)
		}
		for _, c := range clauses {
			if !es.hasProp(c.prop) {
				return opts, fmt.Errorf("property %s not found in type %s", c.prop, es.typeName)
			}
		}
		opts.filter = clauses
	}
	if e := q.Get("$expand"); e != "" {
		for _, n := range strings.Split(e, ",") {
			n = strings.TrimSpace(n)
			if !es.hasNav(n) {
				return opts, fmt.Errorf("navigation property %s not found in type %s", n, es.typeName)
			}
			opts.expand[n] = true
		}
	}
	if sel := q.Get("$select"); sel != "" && strings.TrimSpace(sel) != "*" {
		for _, n := range strings.Split(sel, ",") {
			n = strings.TrimSpace(n)
			if !es.hasProp(n) && !es.hasNav(n) {
				return opts, fmt.Errorf("property %s not found in type %s", n, es.typeName)
			}
			opts.selects = append(opts.selects, n)
		}
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"$top", &opts.top}, {"$skip", &opts.skip}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return opts, fmt.Errorf("invalid value '%s' for system query option %s", v, p.name)
			}
			*p.dst = n
		}
	}
	switch ic := q.Get("$inlinecount"); ic {
	case "", "none":
	case "allpages":
		opts.inlineCount = true
	default:
		return opts, fmt.Errorf("invalid value '%s' for system query option $inlinecount", ic)
	}
	return opts, nil
}

// project applies $select to an entity (keeping __metadata, as SAP does).
func (qo queryOptions) project(o object) object {
	if qo.selects == nil {
		return o
	}
	out := object{o[0]} // __metadata
	for _, f := range o[1:] {
		for _, s := range qo.selects {
			if f.name == s {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// equals returns the string a filter requires prop to equal, if it does: a
// set's rows may use it to read an index instead of every entity (the
// filter still applies to what they return).
func (qo queryOptions) equals(prop string) (string, bool) {
	for _, c := range qo.filter {
		if c.prop == prop && c.lit.typ == "" {
			return c.lit.text, true
		}
	}
	return "", false
}

func (qo queryOptions) matches(o object) bool {
	for _, c := range qo.filter {
		if !c.matches(o) {
			return false
		}
	}
	return true
}

// serviceURL is the absolute URL of the service root as the client addressed it.
func serviceURL(r *http.Request, svc *odataService) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + svc.path + "/"
}

// withMetadata prepends __metadata to an entity's properties.
func withMetadata(r *http.Request, svc *odataService, es *entitySet, props object) object {
	uri := serviceURL(r, svc) + es.name + es.keyPredicate(props)
	meta := object{{"id", uri}, {"uri", uri}, {"type", svc.name + "." + es.typeName}}
	return append(object{{"__metadata", meta}}, props...)
}

// deferred is how OData V2 renders a navigation property that was not expanded.
func deferred(entityURI, nav string) object {
	return object{{"__deferred", object{{"uri", entityURI + "/" + nav}}}}
}

// serveReadOnly answers GET on an entity set: the collection (with its
// query options) or, with a key predicate, one entity. Anything else is 405,
// as SAP answers for a set it marks not creatable.
func (s *Server) serveReadOnly(w http.ResponseWriter, r *http.Request, svc *odataService, es *entitySet, pred string, rows func(qo queryOptions) []object) {
	switch {
	case r.Method == http.MethodGet && pred == "":
		s.serveCollection(w, r, svc, es, rows)
	case r.Method == http.MethodGet:
		s.serveEntity(w, r, svc, es, pred, rows)
	default:
		s.writeODataError(w, http.StatusMethodNotAllowed, svc, msgMethodNotAllowed(r.Method))
	}
}

// serveEntity answers a GET by key.
func (s *Server) serveEntity(w http.ResponseWriter, r *http.Request, svc *odataService, es *entitySet, pred string, rows func(queryOptions) []object) {
	keys, err := parseKeyPredicate(pred, es)
	if err != nil {
		s.writeODataError(w, http.StatusBadRequest, svc, msgBadQuery("%v", err))
		return
	}
	q := r.URL.Query()
	q.Del("$filter") // not applicable to a single entity
	qo, err := parseQuery(q, es)
	if err != nil {
		s.writeODataError(w, http.StatusBadRequest, svc, msgBadQuery("%v", err))
		return
	}
	for _, k := range es.keys {
		qo.filter = append(qo.filter, filterClause{prop: k, lit: literal{text: keys[k]}})
	}
	for _, o := range rows(qo) {
		if qo.matches(o) {
			writeJSON(w, http.StatusOK, object{{"d", qo.project(withMetadata(r, svc, es, o))}})
			return
		}
	}
	s.writeODataError(w, http.StatusNotFound, svc, msgNotFound(es.name+pred))
}

// serveCollection answers a GET on an entity set with the rows that match the query.
func (s *Server) serveCollection(w http.ResponseWriter, r *http.Request, svc *odataService, es *entitySet, rows func(qo queryOptions) []object) {
	qo, err := parseQuery(r.URL.Query(), es)
	if err != nil {
		s.writeODataError(w, http.StatusBadRequest, svc, msgBadQuery("%v", err))
		return
	}
	var results []object
	for _, o := range rows(qo) {
		if qo.matches(o) {
			results = append(results, o)
		}
	}
	count := len(results)
	results = results[min(qo.skip, len(results)):]
	if qo.top >= 0 && qo.top < len(results) {
		results = results[:qo.top]
	}
	page := make([]object, len(results))
	for i, o := range results {
		page[i] = qo.project(withMetadata(r, svc, es, o))
	}
	d := object{}
	if qo.inlineCount {
		d = append(d, field{"__count", strconv.Itoa(count)})
	}
	d = append(d, field{"results", page})
	writeJSON(w, http.StatusOK, object{{"d", d}})
}

// --- dates and amounts ---------------------------------------------------------------

// formatEdmDate renders an Edm.DateTime as OData V2 JSON: milliseconds since the
// epoch in UTC.
func formatEdmDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("/Date(%d)/", t.UnixMilli())
}

// formatEdmDateTimeOffset renders an Edm.DateTimeOffset as OData V2 JSON.
func formatEdmDateTimeOffset(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("/Date(%d+0000)/", t.UnixMilli())
}

// parseEdmDateTime accepts the forms SAP Gateway accepts in V2 JSON payloads:
// /Date(ms)/, /Date(ms+hhmm)/ and ISO 8601 date-times.
func parseEdmDateTime(s string) (time.Time, error) {
	if rest, ok := strings.CutPrefix(s, "/Date("); ok {
		inner, ok := strings.CutSuffix(rest, ")/")
		if !ok {
			return time.Time{}, fmt.Errorf("malformed date %q", s)
		}
		offset := 0
		if i := strings.LastIndexAny(inner, "+-"); i > 0 {
			off, err := strconv.Atoi(inner[i+1:])
			if err != nil || len(inner[i+1:]) != 4 {
				return time.Time{}, fmt.Errorf("malformed date %q", s)
			}
			offset = (off/100*60 + off%100) * 60
			if inner[i] == '-' {
				offset = -offset
			}
			inner = inner[:i]
		}
		ms, err := strconv.ParseInt(inner, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("malformed date %q", s)
		}
		return time.UnixMilli(ms).In(time.FixedZone("", offset)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("malformed date %q", s)
}

// dateOnly keeps the calendar date of t in UTC, as SAP does for Edm.DateTime
// properties with display format Date.
func dateOnly(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// formatAmount renders a decimal with at least two decimal places, the way SAP
// renders currency amounts.
func formatAmount(d decimal.Decimal) string {
	if d.Exponent() < -2 {
		return d.String()
	}
	return d.StringFixed(2)
}

// --- service documents ---------------------------------------------------------------

// serveServiceDocument answers GET on the service root.
func serveServiceDocument(w http.ResponseWriter, r *http.Request, svc *odataService) {
	names := make([]string, len(svc.entitySets))
	for i, es := range svc.entitySets {
		names[i] = es.name
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, object{{"d", object{{"EntitySets", names}}}})
}

// serveMetadata answers $metadata with a stub: enough for tools that only check the
// service exists, not a full EDMX.
func serveMetadata(w http.ResponseWriter, svc *odataService) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` +
		`<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">` +
		`<edmx:DataServices m:DataServiceVersion="2.0"><Schema Namespace="` + svc.name + `" xmlns="http://schemas.microsoft.com/ado/2008/09/edm">`)
	for _, es := range svc.entitySets {
		b.WriteString(`<EntityType Name="` + es.typeName + `"><Key>`)
		for _, k := range es.keys {
			b.WriteString(`<PropertyRef Name="` + k + `"/>`)
		}
		b.WriteString(`</Key>`)
		for _, p := range es.props {
			b.WriteString(`<Property Name="` + p + `" Type="Edm.String"/>`)
		}
		b.WriteString(`</EntityType>`)
	}
	b.WriteString(`<EntityContainer Name="` + svc.name + `_Entities" m:IsDefaultEntityContainer="true">`)
	for _, es := range svc.entitySets {
		b.WriteString(`<EntitySet Name="` + es.name + `" EntityType="` + svc.name + `.` + es.typeName + `"/>`)
	}
	b.WriteString(`</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>`)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("DataServiceVersion", "2.0")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(b.String()))
}
