package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	stdjson "encoding/json"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// Load reads, decodes and validates the file at path. Errors name the file,
// the field and the reason.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes data over the defaults, strictly (see DecodeStrict), and
// validates the result.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	if err := DecodeStrict(data, &cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// DecodeStrict decodes one JSON object from data into v, a pointer to a
// struct that holds the defaults: members are merged into it, so a field
// the object leaves out keeps its default. Field names match the `json`
// tags exactly, case included (only master mode's object, whose names
// come from Mesos-DNS, matches them in any case: see Master). Unknown
// fields, wrong types, trailing data and a null where encoding/json would
// have kept the default (see rejectNull) are errors; a field given twice
// takes its last value. A field's error is a *FieldError naming its
// dotted path ("cache.maxEntries", `zones["mesos."][0]`). Other
// configuration files (the watchdog's) use it too, so every file fails
// the same way.
func DecodeStrict(data []byte, v any) error {
	root := reflect.TypeOf(v)
	// Checked first: a null must not silently reset a default.
	if err := rejectNull(data, root); err != nil {
		return err
	}
	// A field given twice takes its last value, as encoding/json did:
	// test and generated files append overrides that way.
	dec := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true))
	if k := dec.PeekKind(); k != '{' {
		if _, err := dec.ReadToken(); err != nil {
			return decodeError(root, err)
		}
		return fmt.Errorf("invalid JSON: the configuration must be an object, got JSON %s", kindName(k))
	}
	if err := json.UnmarshalDecode(dec, v, json.RejectUnknownMembers(true)); err != nil {
		return decodeError(root, err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return errors.New("invalid JSON: trailing data after the configuration object")
	}
	return nil
}

// rejectNull returns a *FieldError for the first null value in data that
// would not mean what encoding/json made of it. A null list, map or
// optional object (master) is empty or absent, as before; but a null
// object or scalar used to leave the default in place, where the decoder
// would now set the zero value (a null "cache" would zero every cache
// bound, a null "metrics" turn metrics off), so it is refused. Unknown
// fields and syntax errors are left to the decoder.
func rejectNull(data []byte, root reflect.Type) error {
	dec := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true))
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil
		}
		if tok.Kind() != 'n' {
			continue
		}
		path, t := walkPointer(root, dec.StackPointer())
		switch {
		case t == nil, t.Kind() == reflect.Slice, t.Kind() == reflect.Map, t.Kind() == reflect.Pointer, t.Kind() == reflect.Interface:
			continue
		case t == durationType:
			continue // Duration reports it as not a duration
		}
		return &FieldError{Field: path, Reason: "null is not a value here (leave the field out for its default)"}
	}
}

// decodeError turns an error of the JSON decoder into one that names the
// field by its dotted path, as Validate does.
func decodeError(root reflect.Type, err error) error {
	var semErr *json.SemanticError
	var synErr *jsontext.SyntacticError
	var durErr *stdjson.UnmarshalTypeError // from Duration.UnmarshalJSON
	switch {
	case errors.As(err, &semErr):
		field := fieldPath(root, semErr.JSONPointer)
		switch {
		case errors.Is(semErr.Err, json.ErrUnknownName):
			return &FieldError{Field: field, Reason: "unknown field"}
		case errors.As(err, &durErr) && durErr.Type == durationType:
			return &FieldError{Field: field, Reason: fmt.Sprintf("not a duration: %s (want e.g. \"2s\", \"500ms\" or a number of seconds)", durErr.Value)}
		case semErr.GoType != nil && semErr.JSONKind != 0:
			reason := fmt.Sprintf("expected %s, got JSON %s", semErr.GoType, kindName(semErr.JSONKind))
			if len(semErr.JSONValue) > 0 && semErr.JSONKind == '0' {
				reason += " " + string(semErr.JSONValue)
			}
			return &FieldError{Field: field, Reason: reason}
		}
		return &FieldError{Field: field, Reason: semErr.Error()}
	case errors.As(err, &synErr):
		return fmt.Errorf("invalid JSON at byte %d: %w", synErr.ByteOffset, synErr.Err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("invalid JSON: unexpected end of input")
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// kindName names a JSON kind as a user knows it.
func kindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return k.String()
}

// fieldPath renders a JSON Pointer into the decoded value of type root as
// the dotted path Validate uses: struct members joined by dots, map keys
// and array indices in brackets (`zones["mesos."][0]`). Member names are
// the ones the input used.
func fieldPath(root reflect.Type, p jsontext.Pointer) string {
	path, _ := walkPointer(root, p)
	return path
}

// walkPointer returns the dotted path of p (see fieldPath) and the Go type
// of the value it points to, nil when that is not a known field.
func walkPointer(root reflect.Type, p jsontext.Pointer) (string, reflect.Type) {
	var b strings.Builder
	t := root
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem() // DecodeStrict's argument
	}
	for tok := range p.Tokens() {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t != nil && t.Kind() == reflect.Map:
			fmt.Fprintf(&b, "[%q]", tok)
			t = t.Elem()
		case t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
			fmt.Fprintf(&b, "[%s]", tok)
			t = t.Elem()
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(tok)
			t = memberType(t, tok)
		}
	}
	return b.String(), t
}

// memberType returns the type of the member name of struct type t (by its
// JSON name, in any case), or nil when there is none.
func memberType(t reflect.Type, name string) reflect.Type {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var folded reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f.Type
		}
		if folded == nil && strings.EqualFold(tag, name) {
			folded = f.Type
		}
	}
	return folded
}

// UnmarshalJSONFrom decodes a master object over DefaultMaster, so a
// partial object keeps the defaults for the fields it leaves out. Its
// field names match in any case (as strings.EqualFold does), unlike the
// rest of the configuration: they come from Mesos-DNS's config.json
// (IPSources, EnforceRFC952, SOAMname, ...), whose decoder ignored case,
// and a Mesos-DNS file's master settings must keep working when copied
// here. Unknown fields stay errors.
func (m *Master) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	type plain Master // without this method, to avoid recursion
	p := plain(DefaultMaster())
	if err := json.UnmarshalDecode(dec, &p,
		json.MatchCaseInsensitiveNames(true), jsonv1.MatchCaseSensitiveDelimiter(true)); err != nil {
		return err
	}
	*m = Master(p)
	return nil
}

// FieldError says which field of a configuration is wrong and why.
type FieldError struct {
	// Field is the dotted path of the field: "listen[0]",
	// "cache.maxEntries", `zones["mesos."]`.
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %s: %s", e.Field, e.Reason) }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// SplitList splits the value of a comma-separated list flag ("-listen
// A,B"), trimming spaces around each element. An empty element (",,", a
// trailing comma, an empty value) is an error rather than skipped: it is
// a typo or an unset variable, and skipping it could leave a list empty
// and so fall back to a default the operator did not ask for.
func SplitList(s string) ([]string, error) {
	parts := strings.Split(s, ",")
	out := make([]string, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			if len(parts) == 1 {
				return nil, errors.New("empty list")
			}
			return nil, fmt.Errorf("element %d of %d is empty", i+1, len(parts))
		}
		out = append(out, p)
	}
	return out, nil
}
