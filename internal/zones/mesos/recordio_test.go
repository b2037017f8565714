package mesos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// RecordIO as Mesos's docs/recordio.md defines it: "<length>\n<bytes>",
// the length in decimal ASCII, records back to back.
func TestRecordReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int64
		want    []string
		wantErr string // empty: the stream ends with io.EOF
	}{
		{name: "empty stream", in: "", max: 100},
		{name: "two records", in: "5\nhello3\n{}\n", max: 100, want: []string{"hello", "{}\n"}},
		{name: "empty record", in: "0\n2\nab", max: 100, want: []string{"", "ab"}},
		{name: "leading zeros", in: "003\nabc", max: 100, want: []string{"abc"}},
		{name: "at the limit", in: "4\nabcd", max: 4, want: []string{"abcd"}},
		{name: "over the limit", in: "5\nabcde", max: 4, wantErr: "record 1: length 5 exceeds the limit of 4 bytes"},
		{name: "not a digit", in: "2\nab x\n", max: 100, want: []string{"ab"}, wantErr: `record 2: length line has ' '`},
		{name: "empty length line", in: "\nab", max: 100, wantErr: "record 1: empty length line"},
		{name: "too many digits", in: "99999999999999999999\n", max: 1 << 62, wantErr: "length has more than 19 digits"},
		{name: "cut in the length", in: "2\nab12", max: 100, want: []string{"ab"}, wantErr: "record 2: length line: unexpected EOF"},
		{name: "cut in the body", in: "5\nab", max: 100, wantErr: "record 1 (5 bytes): unexpected EOF"},
		{name: "JSON without framing", in: `{"type":"SUBSCRIBED"}`, max: 100, wantErr: `length line has '{'`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				rr := newRecordReader(r, tc.max)
				var got []string
				var err error
				for {
					var rec []byte
					rec, err = rr.next()
					if err != nil {
						break
					}
					got = append(got, string(rec))
				}
				require.Equal(t, tc.want, got)
				if tc.wantErr == "" {
					require.ErrorIs(t, err, io.EOF)
					continue
				}
				require.ErrorContains(t, err, tc.wantErr)
				require.NotErrorIs(t, err, io.EOF, "a broken stream is no clean end")
			}
		})
	}
}

// FuzzRecordReader reads any bytes as RecordIO. It must never panic, never
// return a record longer than the limit, and records written back in
// RecordIO must read the same.
func FuzzRecordReader(f *testing.F) {
	f.Add([]byte("5\nhello3\n{}\n"), uint16(16))
	f.Add([]byte("0\n"), uint16(0))
	f.Add([]byte("18446744073709551616\nx"), uint16(100))
	f.Add([]byte("21\n{\"type\":\"HEARTBEAT\"}"), uint16(21))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		rr := newRecordReader(bytes.NewReader(in), int64(limit))
		var framed bytes.Buffer
		var recs [][]byte
		for {
			rec, err := rr.next()
			if err != nil {
				if !errors.Is(err, io.EOF) && err.Error() == "" {
					t.Fatal("error without a message")
				}
				break
			}
			if len(rec) > int(limit) {
				t.Fatalf("record of %d bytes over the limit %d", len(rec), limit)
			}
			recs = append(recs, bytes.Clone(rec))
			fmt.Fprintf(&framed, "%d\n", len(rec))
			framed.Write(rec)
		}
		again := newRecordReader(&framed, int64(limit))
		for i, want := range recs {
			got, err := again.next()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("record %d re-read as %q, %v; want %q", i, got, err, want)
			}
		}
		if _, err := again.next(); !errors.Is(err, io.EOF) {
			t.Fatalf("re-framed stream does not end cleanly: %v", err)
		}
	})
}
