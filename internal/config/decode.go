package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
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

// Parse decodes data over the defaults, strictly (unknown fields are errors),
// and validates the result.
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

// DecodeStrict decodes one JSON object from data into v, which holds the
// defaults: unknown fields, wrong types and trailing data are errors, and a
// field's error is a *FieldError naming it. Other configuration files (the
// watchdog's) use it too, so every file fails the same way.
func DecodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var fieldErr *FieldError
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &fieldErr):
			return fieldErr
		case errors.As(err, &typeErr) && typeErr.Type == durationType:
			return &FieldError{Field: typeErr.Field, Reason: fmt.Sprintf("not a duration: %s (want e.g. \"2s\", \"500ms\" or a number of seconds)", typeErr.Value)}
		case errors.As(err, &typeErr):
			return &FieldError{Field: typeErr.Field, Reason: fmt.Sprintf("expected %s, got JSON %s", typeErr.Type, typeErr.Value)}
		case errors.As(err, &syntaxErr):
			return fmt.Errorf("invalid JSON at byte %d: %w", syntaxErr.Offset, err)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			return &FieldError{Field: name, Reason: "unknown field"}
		}
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON: trailing data after the configuration object")
	}
	return nil
}

// UnmarshalJSON decodes a master object over DefaultMaster, strictly, so a
// partial object keeps the defaults for the fields it leaves out.
func (m *Master) UnmarshalJSON(b []byte) error {
	type plain Master // without this method, to avoid recursion
	p := plain(DefaultMaster())
	if err := DecodeStrict(b, &p); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return &FieldError{Field: "master." + fe.Field, Reason: fe.Reason}
		}
		return fmt.Errorf("master: %w", err)
	}
	*m = Master(p)
	return nil
}

// FieldError says which field of a configuration is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %s: %s", e.Field, e.Reason) }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
