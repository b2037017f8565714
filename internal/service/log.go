package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

// LoggerOptions configures NewLogger.
type LoggerOptions struct {
	Level  string // debug, info, warn, error
	Format string // text or json
}

// NewLogger returns the process logger writing to w (normally stderr).
// When stderr is connected to the journal (JOURNAL_STREAM names it), text
// lines drop the timestamp, which the journal records itself, and carry a
// "<N>" syslog priority prefix so that journalctl -p works.
func NewLogger(w io.Writer, opt LoggerOptions) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(opt.Level)); err != nil {
		return nil, fmt.Errorf("service: log level %q: %w", opt.Level, err)
	}
	journaled, _ := journal.StderrIsJournalStream()
	hopts := &slog.HandlerOptions{Level: level}
	if journaled {
		hopts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	var h slog.Handler
	switch strings.ToLower(opt.Format) {
	case "json":
		h = slog.NewJSONHandler(w, hopts)
	case "text", "":
		if journaled {
			return slog.New(newPriorityHandler(w, hopts)), nil
		}
		h = slog.NewTextHandler(w, hopts)
	default:
		return nil, fmt.Errorf("service: log format %q: want text or json", opt.Format)
	}
	return slog.New(h), nil
}

// priorityHandler writes text records prefixed with their syslog priority
// ("<3>" error ... "<7>" debug), which journald strips and records.
type priorityHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	inner slog.Handler
	buf   *prefixWriter
}

type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	// One Write per record from slog's text handler: prefix it whole.
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func newPriorityHandler(w io.Writer, opts *slog.HandlerOptions) *priorityHandler {
	pw := &prefixWriter{w: w}
	return &priorityHandler{mu: new(sync.Mutex), w: w, inner: slog.NewTextHandler(pw, opts), buf: pw}
}

func (h *priorityHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *priorityHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.prefix = priority(r.Level)
	return h.inner.Handle(ctx, r)
}

func (h *priorityHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &priorityHandler{mu: h.mu, w: h.w, inner: h.inner.WithAttrs(as), buf: h.buf}
}

func (h *priorityHandler) WithGroup(name string) slog.Handler {
	return &priorityHandler{mu: h.mu, w: h.w, inner: h.inner.WithGroup(name), buf: h.buf}
}

func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}
