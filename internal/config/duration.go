package config

import (
	"encoding/json"
	"reflect"
	"time"
)

// Duration is a time.Duration written in JSON as a Go duration string
// ("1.5s", "30m"); a bare number means seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

var durationType = reflect.TypeOf(Duration(0))

// UnmarshalJSON accepts a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	// DecodeStrict recognizes this *json.UnmarshalTypeError and names
	// the field by its path in the message.
	bad := &json.UnmarshalTypeError{Value: string(b), Type: durationType}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return bad
		}
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return bad
	}
	*d = Duration(f * float64(time.Second))
	return nil
}
