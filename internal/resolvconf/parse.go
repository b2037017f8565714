// Package resolvconf reads, writes and safely replaces resolv.conf files.
//
// Parse keeps every line exactly as written (comments, blank lines, odd
// spacing, unknown directives, a missing final newline) and also records
// what each line means to glibc's stub resolver, so Bytes gives back the
// input byte for byte while Nameservers, Search and Options give its
// meaning. New files are built with the Add methods.
//
// WriteFile replaces a file so that a concurrent reader never sees it
// empty, partial or missing; Manager saves the original file the first
// time it is taken over and puts it back on Restore.
package resolvconf

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// MaxNameservers is how many nameserver lines glibc uses (MAXNS); later
// ones are ignored.
const MaxNameservers = 3

// Kind says what a line is.
type Kind int

// Line kinds.
const (
	Blank      Kind = iota // empty or white space only
	Comment                // starts with '#' or ';'
	Nameserver             // nameserver ADDR
	Domain                 // domain NAME
	Search                 // search NAME...
	Options                // options OPT[:VALUE]...
	Sortlist               // sortlist ADDR[/MASK]...
	Unknown                // anything else, kept verbatim and otherwise ignored
)

var kindNames = [...]string{"blank", "comment", "nameserver", "domain", "search", "options", "sortlist", "unknown"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

var keywords = map[string]Kind{
	"nameserver": Nameserver,
	"domain":     Domain,
	"search":     Search,
	"options":    Options,
	"sortlist":   Sortlist,
}

// Line is one line of a resolv.conf file.
type Line struct {
	// Text is the line exactly as read, without its terminating "\n" (a
	// "\r" before it stays part of the text).
	Text string
	// Kind classifies the line the way glibc does: a directive's keyword
	// must start the line and be followed by a space or a tab.
	Kind Kind
	// Args are the white-space separated fields after the keyword, up to
	// a field starting with '#' or ';' (a trailing comment).
	Args []string
	// Addr is a nameserver line's address, zone included
	// ("fe80::1%eth0"); invalid when the address does not parse, in which
	// case glibc ignores the line.
	Addr netip.Addr
}

// File is a parsed resolv.conf.
type File struct {
	// Lines are all the lines in order.
	Lines []Line
	// NoFinalNewline records that the last line had no "\n", so that
	// Bytes reproduces the input exactly.
	NoFinalNewline bool
}

// Parse parses data. It never fails: lines it does not understand are kept
// as Unknown (see Warnings), so any input survives a round trip.
func Parse(data []byte) *File {
	f := &File{}
	if len(data) == 0 {
		return f
	}
	rest := data
	for len(rest) > 0 {
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
			f.NoFinalNewline = true
		}
		f.Lines = append(f.Lines, parseLine(string(line)))
	}
	return f
}

// isSpace reports the field separators glibc uses. A '\r' is not one: in
// a file with CRLF line ends glibc reads "192.0.2.1\r" as the address and
// rejects it, and Warnings says so.
func isSpace(r rune) bool { return r == ' ' || r == '\t' }

func parseLine(text string) Line {
	l := Line{Text: text, Kind: Unknown}
	switch {
	case strings.Trim(text, " \t\r") == "":
		l.Kind = Blank
		return l
	case text[0] == '#' || text[0] == ';':
		l.Kind = Comment
		return l
	}
	// glibc matches the keyword at the very start of the line, followed
	// by a space or a tab; an indented directive is ignored by glibc, so
	// it is Unknown here too (Warnings says so).
	for kw, kind := range keywords {
		if len(text) > len(kw) && text[:len(kw)] == kw && (text[len(kw)] == ' ' || text[len(kw)] == '\t') {
			l.Kind = kind
			l.Args = fields(text[len(kw):])
			break
		}
	}
	if l.Kind == Nameserver && len(l.Args) > 0 {
		// glibc reads one address and ignores whatever follows it.
		if a, err := netip.ParseAddr(l.Args[0]); err == nil {
			l.Addr = a
		}
	}
	return l
}

// fields splits s on white space, stopping at a field that starts a
// trailing comment.
func fields(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, isSpace) {
		if f[0] == '#' || f[0] == ';' {
			break
		}
		out = append(out, f)
	}
	return out
}

// hasTrailingComment reports a '#' or ';' field after the keyword.
func hasTrailingComment(s string) bool {
	return len(strings.FieldsFunc(s, isSpace)) > len(fields(s))
}

// Bytes renders the file. For a parsed file it is the parsed input, byte
// for byte.
func (f *File) Bytes() []byte {
	var b bytes.Buffer
	for i, l := range f.Lines {
		b.WriteString(l.Text)
		if i < len(f.Lines)-1 || !f.NoFinalNewline {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// Nameservers returns the valid nameserver addresses in order, all of them
// (glibc uses the first MaxNameservers).
func (f *File) Nameservers() []netip.Addr {
	var out []netip.Addr
	for _, l := range f.Lines {
		if l.Kind == Nameserver && l.Addr.IsValid() {
			out = append(out, l.Addr)
		}
	}
	return out
}

// Search returns the effective search list: the last search or domain line
// wins, as in glibc.
func (f *File) Search() []string {
	var out []string
	for _, l := range f.Lines {
		switch {
		case l.Kind == Search:
			out = append([]string(nil), l.Args...)
		case l.Kind == Domain && len(l.Args) > 0:
			out = []string{l.Args[0]}
		}
	}
	return out
}

// Option is one resolver option: "ndots:5" has Name "ndots" and Value "5";
// "rotate" has an empty Value and HasValue false.
type Option struct {
	Name     string
	Value    string
	HasValue bool
}

func (o Option) String() string {
	if o.HasValue {
		return o.Name + ":" + o.Value
	}
	return o.Name
}

// ParseOption splits an options field.
func ParseOption(s string) Option {
	if name, value, ok := strings.Cut(s, ":"); ok {
		return Option{Name: name, Value: value, HasValue: true}
	}
	return Option{Name: s}
}

// Options returns every option of every options line, in order.
func (f *File) Options() []Option {
	var out []Option
	for _, l := range f.Lines {
		if l.Kind == Options {
			for _, a := range l.Args {
				out = append(out, ParseOption(a))
			}
		}
	}
	return out
}

// Option returns the effective value of the named option: the last one set.
func (f *File) Option(name string) (Option, bool) {
	var found Option
	var ok bool
	for _, o := range f.Options() {
		if o.Name == name {
			found, ok = o, true
		}
	}
	return found, ok
}

// knownOptions are the options glibc's resolver understands, with the
// largest value it accepts for the numeric ones (0 for flags).
var knownOptions = map[string]int{
	"ndots": 15, "timeout": 30, "attempts": 5,
	"debug": 0, "rotate": 0, "no-check-names": 0, "inet6": 0, "ip6-bytestring": 0,
	"ip6-dotint": 0, "no-ip6-dotint": 0, "edns0": 0, "single-request": 0,
	"single-request-reopen": 0, "no-tld-query": 0, "use-vc": 0, "no-reload": 0,
	"trust-ad": 0, "no-aaaa": 0,
}

// Warnings lists what a reader of the file should know: nameservers glibc
// ignores, unparsable lines, unknown options, conflicting directives. Each
// names its line number (from 1).
func (f *File) Warnings() []string {
	var w []string
	warn := func(n int, format string, args ...any) {
		w = append(w, fmt.Sprintf("line %d: ", n+1)+fmt.Sprintf(format, args...))
	}
	valid := 0
	var searchLine, domainLine = -1, -1
	for i, l := range f.Lines {
		switch l.Kind {
		case Nameserver:
			switch {
			case len(l.Args) == 0:
				warn(i, "nameserver without an address")
			case !l.Addr.IsValid():
				warn(i, "nameserver %q is not an IP address; ignored", l.Args[0])
			default:
				valid++
				if valid == MaxNameservers+1 {
					warn(i, "more than %d nameservers: glibc uses only the first %d", MaxNameservers, MaxNameservers)
				}
			}
		case Search:
			searchLine = i
		case Domain:
			domainLine = i
		case Options:
			for _, a := range l.Args {
				o := ParseOption(a)
				max, known := knownOptions[o.Name]
				switch {
				case !known:
					warn(i, "unknown option %q", a)
				case max > 0:
					n, err := strconv.Atoi(o.Value)
					if !o.HasValue || err != nil || n < 0 {
						warn(i, "option %q needs a non-negative number", a)
					} else if n > max {
						warn(i, "option %q: glibc caps %s at %d", a, o.Name, max)
					}
				}
			}
		case Unknown:
			kw := firstField(l.Text)
			_, isKeyword := keywords[kw]
			switch {
			case isKeyword && (l.Text[0] == ' ' || l.Text[0] == '\t'):
				warn(i, "indented directive: glibc ignores it")
			case isKeyword:
				warn(i, "%s without a value; ignored", kw)
			default:
				warn(i, "unknown directive %q; ignored", kw)
			}
		}
		// glibc takes one field of nameserver and domain lines and ignores
		// the rest, but reads every field of the others.
		if (l.Kind == Search || l.Kind == Options || l.Kind == Sortlist) && hasTrailingComment(l.Text) {
			warn(i, "trailing comment: glibc reads it as part of the line")
		}
	}
	if searchLine >= 0 && domainLine >= 0 {
		last := max(searchLine, domainLine)
		warn(last, "both search and domain are set: only the last one counts")
	}
	return w
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// AddComment appends a comment line; text gets a "# " prefix unless it
// already starts with '#'.
func (f *File) AddComment(text string) {
	if !strings.HasPrefix(text, "#") {
		text = "# " + text
	}
	f.Lines = append(f.Lines, Line{Text: text, Kind: Comment})
}

// AddNameserver appends a nameserver line.
func (f *File) AddNameserver(a netip.Addr) {
	s := a.String()
	f.Lines = append(f.Lines, Line{Text: "nameserver " + s, Kind: Nameserver, Args: []string{s}, Addr: a})
}

// AddOptions appends an options line; nothing when opts is empty.
func (f *File) AddOptions(opts ...Option) {
	if len(opts) == 0 {
		return
	}
	args := make([]string, len(opts))
	for i, o := range opts {
		args[i] = o.String()
	}
	f.Lines = append(f.Lines, Line{Text: "options " + strings.Join(args, " "), Kind: Options, Args: args})
}

// AddLine appends a line kept from another file, verbatim.
func (f *File) AddLine(l Line) {
	f.Lines = append(f.Lines, l)
}
