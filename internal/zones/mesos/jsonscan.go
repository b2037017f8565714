package mesos

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// scanner reads JSON from a stream one value at a time, for DecodeState.
// It validates the syntax of everything it reads, including the values it
// skips, but materializes nothing it is not asked for: strings come back
// as views into its buffer (valid until the next call), skipped values are
// never copied. It exists because encoding/json's Decoder allocates for
// every token and decodes through reflection, which made decoding a large
// state (tens of MB) the slowest part of a regeneration.
//
// The token reader of github.com/go-json-experiment/json/jsontext
// (v1.27.2), which needs no reflection either, was tried in its place and
// lost. On the synthetic 100,000-task state (94 MB; BenchmarkDecodeState,
// -cpu 1, pinned to one core, six runs of each build interleaved) a
// decode took 461 ms against 379 ms (medians; ranges 438-525 ms and
// 360-399 ms), 22% more; on a busier machine the gap was 20-53%. Both
// allocated 45 MB in 750k allocations per decode, and a regeneration
// peaked at 184 MiB of heap with either (BenchmarkRegenerateHeap). The
// difference is jsontext's work on every token (its state machine and the
// names it tracks for error pointers), not one hot spot. The port is in
// the repository's history ("decode the state with jsontext"), reverted
// in the commit after it.
type scanner struct {
	r    io.Reader
	buf  []byte
	pos  int   // next unread byte in buf
	end  int   // end of the data in buf
	off  int64 // input offset of buf[0], for error messages
	eof  bool  // r returned io.EOF
	rerr error
	// stack is skip's nesting stack, kept to reuse its memory.
	stack []byte
	// keys holds the keys of the objects being read, innermost last.
	keys []byte
	// unq holds strings that needed unescaping.
	unq []byte
}

// maxDepth bounds nesting, as encoding/json does, so hostile input cannot
// make the scanner hold an arbitrarily large stack.
const maxDepth = 10000

// errSyntax marks malformed JSON.
var errSyntax = errors.New("invalid JSON")

func newScanner(r io.Reader) *scanner {
	return &scanner{r: r, buf: make([]byte, 64<<10)}
}

// offset is the input offset of the next unread byte.
func (s *scanner) offset() int64 { return s.off + int64(s.pos) }

func (s *scanner) syntax(what string) error {
	if s.pos >= s.end && s.eof {
		return fmt.Errorf("%w: unexpected end of input at offset %d, %s", errSyntax, s.offset(), what)
	}
	if s.rerr != nil {
		return fmt.Errorf("reading the state at offset %d: %w", s.offset(), s.rerr)
	}
	return fmt.Errorf("%w at offset %d: %s, got %q", errSyntax, s.offset(), what, s.buf[s.pos])
}

// fill reads more input, keeping buf[keep:end] (moved to the front). It
// reports whether anything was read.
func (s *scanner) fill(keep int) bool {
	if s.eof || s.rerr != nil {
		return false
	}
	if keep > 0 {
		n := copy(s.buf, s.buf[keep:s.end])
		s.off += int64(keep)
		s.pos -= keep
		s.end = n
	}
	if s.end == len(s.buf) {
		// One token fills the buffer: grow it.
		nb := make([]byte, 2*len(s.buf))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	for range 100 {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err == io.EOF {
			s.eof = true
		} else if err != nil {
			s.rerr = err
		}
		if n > 0 || err != nil {
			return n > 0
		}
	}
	s.rerr = io.ErrNoProgress
	return false
}

// peek skips white space and returns the next byte without consuming it;
// ok is false at the end of the input.
func (s *scanner) peek() (byte, bool) {
	// Inlined fast path: no white space (JSON from Mesos has none).
	if s.pos < s.end {
		if c := s.buf[s.pos]; c > ' ' {
			return c, true
		}
	}
	return s.peekSlow()
}

func (s *scanner) peekSlow() (byte, bool) {
	for {
		for s.pos < s.end {
			c := s.buf[s.pos]
			if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
				return c, true
			}
			s.pos++
		}
		if !s.fill(s.pos) {
			return 0, false
		}
	}
}

// consume skips white space and consumes c, or fails.
func (s *scanner) consume(c byte, what string) error {
	if b, ok := s.peek(); !ok || b != c {
		return s.syntax(what)
	}
	s.pos++
	return nil
}

// atEnd reports whether only white space is left.
func (s *scanner) atEnd() bool {
	_, ok := s.peek()
	return !ok && s.rerr == nil
}

// object reads an object member by member: fn is called with each key and
// must consume exactly one value.
func (s *scanner) object(fn func(key []byte) error) error {
	if err := s.consume('{', "expected an object"); err != nil {
		return err
	}
	c, ok := s.peek()
	if ok && c == '}' {
		s.pos++
		return nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		// The key is copied out of the buffer, which reading on may
		// move, onto a stack shared by the nested objects.
		mark := len(s.keys)
		s.keys = append(s.keys, key...)
		key = s.keys[mark:]
		if err := s.consume(':', "expected ':'"); err != nil {
			return err
		}
		err = fn(key)
		s.keys = s.keys[:mark]
		if err != nil {
			return err
		}
		c, ok := s.peek()
		if !ok {
			return s.syntax("expected ',' or '}'")
		}
		s.pos++
		switch c {
		case ',':
		case '}':
			return nil
		default:
			s.pos--
			return s.syntax("expected ',' or '}'")
		}
	}
}

// array reads an array element by element: fn must consume exactly one
// value.
func (s *scanner) array(fn func() error) error {
	if err := s.consume('[', "expected an array"); err != nil {
		return err
	}
	c, ok := s.peek()
	if ok && c == ']' {
		s.pos++
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		c, ok := s.peek()
		if !ok {
			return s.syntax("expected ',' or ']'")
		}
		s.pos++
		switch c {
		case ',':
		case ']':
			return nil
		default:
			s.pos--
			return s.syntax("expected ',' or ']'")
		}
	}
}

// kind returns the kind of the next value: '"', '{', '[', 'n' (null),
// 't'/'f' (true/false), or '0' for a number; 0 when there is none.
func (s *scanner) kind() byte {
	c, ok := s.peek()
	if !ok {
		return 0
	}
	switch {
	case c == '-' || (c >= '0' && c <= '9'):
		return '0'
	case c == '"', c == '{', c == '[', c == 'n', c == 't', c == 'f':
		return c
	}
	return 0
}

// str reads a string and returns its value, valid until the next call.
// Strings without escapes and with valid UTF-8 are returned in place;
// others are decoded by encoding/json, so the result is exactly what it
// would give (invalid UTF-8 becomes U+FFFD).
func (s *scanner) str() ([]byte, error) {
	if err := s.consume('"', "expected a string"); err != nil {
		return nil, err
	}
	start := s.pos // just after the quote
	i := start
	plain := true
	for {
	scan:
		for i < s.end {
			// Runs of plain characters first, in a tight loop.
			buf := s.buf[:s.end]
			for i < len(buf) && plainByte[buf[i]] {
				i++
			}
			if i == len(buf) {
				break
			}
			c := buf[i]
			switch {
			case c == '"':
				v := s.buf[start:i]
				s.pos = i + 1
				if plain {
					return v, nil
				}
				return s.unquote(s.buf[start-1 : i+1])
			case c == '\\':
				n, ok := s.escapeLen(i)
				if !ok {
					if i+n > s.end {
						break scan // the escape continues past the buffer
					}
					s.pos = i
					return nil, s.syntax("invalid escape in string")
				}
				plain = false
				i += n
				continue
			case c < 0x20:
				s.pos = i
				return nil, s.syntax("control character in string")
			case c >= utf8.RuneSelf:
				r, size := utf8.DecodeRune(s.buf[i:s.end])
				if r == utf8.RuneError && size <= 1 {
					if !utf8.FullRune(s.buf[i:s.end]) && !s.eof {
						break scan // the rune continues past the buffer
					}
					plain = false
					size = 1
				}
				i += size
				continue
			default:
				i++
			}
		}
		// Keep the string from its opening quote and read more.
		keep := start - 1
		if !s.fill(keep) {
			s.pos = s.end
			return nil, s.syntax("unterminated string")
		}
		start -= keep
		i -= keep
	}
}

// plainByte tells the bytes that stand for themselves in a string: not
// the quote, the backslash, control characters or non-ASCII.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// escapeLen returns the length of the escape at buf[i] ('\\'), and
// whether it is complete and valid. When it is incomplete because the
// buffer ends, the length returned reaches past the end.
func (s *scanner) escapeLen(i int) (int, bool) {
	if i+1 >= s.end {
		return 2, false
	}
	switch s.buf[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, true
	case 'u':
		if i+6 > s.end {
			return 6, false
		}
		for _, h := range s.buf[i+2 : i+6] {
			if !isHex(h) {
				return 0, false
			}
		}
		return 6, true
	}
	return 0, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// unquote decodes a quoted string with escapes or invalid UTF-8.
func (s *scanner) unquote(quoted []byte) ([]byte, error) {
	var v string
	if err := json.Unmarshal(quoted, &v); err != nil {
		return nil, fmt.Errorf("%w at offset %d: %w", errSyntax, s.offset(), err)
	}
	s.unq = append(s.unq[:0], v...)
	return s.unq, nil
}

// number reads a number and returns its text.
func (s *scanner) number() ([]byte, error) {
	if _, ok := s.peek(); !ok {
		return nil, s.syntax("expected a number")
	}
	for {
		i := s.pos
		n, complete := scanNumber(s.buf[i:s.end], s.eof)
		if complete {
			if n == 0 {
				return nil, s.syntax("invalid number")
			}
			s.pos = i + n
			return s.buf[i : i+n], nil
		}
		if !s.fill(i) {
			if s.rerr != nil {
				return nil, s.syntax("reading a number")
			}
			s.eof = true
		}
	}
}

// scanNumber returns the length of the JSON number at the start of b, 0
// if there is none, and whether that is certain (a number ending exactly
// at the end of b may continue unless eof).
func scanNumber(b []byte, eof bool) (int, bool) {
	i := 0
	more := func() bool { return i < len(b) }
	digit := func() bool { return i < len(b) && b[i] >= '0' && b[i] <= '9' }
	if more() && b[i] == '-' {
		i++
	}
	switch {
	case !more():
		return 0, eof
	case b[i] == '0':
		i++
	case digit():
		for digit() {
			i++
		}
	default:
		return 0, true
	}
	if more() && b[i] == '.' {
		i++
		if !digit() {
			return 0, eof || more()
		}
		for digit() {
			i++
		}
	}
	if more() && (b[i] == 'e' || b[i] == 'E') {
		i++
		if more() && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digit() {
			return 0, eof || more()
		}
		for digit() {
			i++
		}
	}
	return i, eof || more()
}

// literal consumes true, false or null, returning its first byte.
func (s *scanner) literal() (byte, error) {
	c, ok := s.peek()
	if !ok {
		return 0, s.syntax("expected a value")
	}
	var want string
	switch c {
	case 't':
		want = "true"
	case 'f':
		want = "false"
	case 'n':
		want = "null"
	default:
		return 0, s.syntax("expected a value")
	}
	for s.end-s.pos < len(want) {
		if !s.fill(s.pos) {
			return 0, s.syntax("expected " + want)
		}
	}
	if string(s.buf[s.pos:s.pos+len(want)]) != want {
		return 0, s.syntax("expected " + want)
	}
	s.pos += len(want)
	return c, nil
}

// skip consumes one value of any kind, checking its syntax.
func (s *scanner) skip() error {
	stack := s.stack[:0]
	defer func() { s.stack = stack[:0] }()
	for {
		// A value.
		switch s.kind() {
		case '"':
			if _, err := s.str(); err != nil {
				return err
			}
		case '0':
			if _, err := s.number(); err != nil {
				return err
			}
		case 'n', 't', 'f':
			if _, err := s.literal(); err != nil {
				return err
			}
		case '{', '[':
			if len(stack) >= maxDepth {
				return s.syntax("nesting too deep")
			}
			c := s.buf[s.pos]
			s.pos++
			close := byte('}')
			if c == '[' {
				close = ']'
			}
			if b, ok := s.peek(); ok && b == close {
				s.pos++
				break
			}
			stack = append(stack, close)
			if c == '{' {
				if err := s.key(); err != nil {
					return err
				}
			}
			continue
		default:
			return s.syntax("expected a value")
		}
		// After a value: close containers or move to the next member.
		for {
			if len(stack) == 0 {
				return nil
			}
			top := stack[len(stack)-1]
			c, ok := s.peek()
			if !ok {
				return s.syntax("expected ',' or '" + string(top) + "'")
			}
			if c == top {
				s.pos++
				stack = stack[:len(stack)-1]
				continue
			}
			if c != ',' {
				return s.syntax("expected ',' or '" + string(top) + "'")
			}
			s.pos++
			if top == '}' {
				if err := s.key(); err != nil {
					return err
				}
			}
			break
		}
	}
}

// key consumes an object key and its colon.
func (s *scanner) key() error {
	if _, err := s.str(); err != nil {
		return err
	}
	return s.consume(':', "expected ':'")
}
