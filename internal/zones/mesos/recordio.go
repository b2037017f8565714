package mesos

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// errRecordIO marks a stream that is not RecordIO.
var errRecordIO = errors.New("malformed RecordIO")

// maxRecordDigits bounds the length line: 19 digits hold any int64.
const maxRecordDigits = 19

// recordReader reads RecordIO, the framing of Mesos's streaming HTTP
// responses: each record is its length in bytes as decimal ASCII, a line
// feed, then that many bytes (the "RecordIO format" of Mesos's
// docs/recordio.md, used by the operator API's SUBSCRIBE response).
type recordReader struct {
	r *bufio.Reader
	// max bounds a record's length; a longer one fails the stream
	// before any of it is read, so a corrupt length cannot make the
	// reader allocate without limit. It may be changed between records.
	max int64
	buf []byte
	n   int64 // records read, for error messages
}

func newRecordReader(r io.Reader, max int64) *recordReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &recordReader{r: br, max: max}
}

// next returns the next record, valid until the following call. It
// returns io.EOF at a clean end of the stream (between records) and an
// error wrapping io.ErrUnexpectedEOF when the stream ends inside one.
func (rr *recordReader) next() ([]byte, error) {
	var size int64
	digits := 0
	for {
		c, err := rr.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if digits == 0 {
					return nil, io.EOF
				}
				return nil, fmt.Errorf("record %d: length line: %w", rr.n+1, io.ErrUnexpectedEOF)
			}
			return nil, fmt.Errorf("record %d: %w", rr.n+1, err)
		}
		if c == '\n' {
			break
		}
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("%w: record %d: length line has %q, want decimal digits then a line feed", errRecordIO, rr.n+1, c)
		}
		digits++
		if digits > maxRecordDigits {
			return nil, fmt.Errorf("%w: record %d: length has more than %d digits", errRecordIO, rr.n+1, maxRecordDigits)
		}
		size = size*10 + int64(c-'0')
	}
	if digits == 0 {
		return nil, fmt.Errorf("%w: record %d: empty length line", errRecordIO, rr.n+1)
	}
	if size > rr.max {
		return nil, fmt.Errorf("%w: record %d: length %d exceeds the limit of %d bytes", errRecordIO, rr.n+1, size, rr.max)
	}
	if int64(cap(rr.buf)) < size {
		rr.buf = make([]byte, size)
	}
	rr.buf = rr.buf[:size]
	if _, err := io.ReadFull(rr.r, rr.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("record %d (%d bytes): %w", rr.n+1, size, err)
	}
	rr.n++
	return rr.buf, nil
}
