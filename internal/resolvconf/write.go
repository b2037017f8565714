package resolvconf

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// SymlinkPolicy says what WriteFile does when the file is a symbolic link,
// as /etc/resolv.conf is under systemd-resolved (a link to
// /run/systemd/resolve/stub-resolv.conf).
type SymlinkPolicy string

const (
	// SymlinkReplace replaces the link itself with a regular file, leaving
	// the file it pointed to alone. It is the default: the link's target
	// belongs to another program that would overwrite what is written
	// there. Manager records the link so Restore can put it back.
	SymlinkReplace SymlinkPolicy = "replace"
	// SymlinkFollow writes the file the link points to, keeping the link.
	SymlinkFollow SymlinkPolicy = "follow"
)

// Valid reports whether p is a known policy.
func (p SymlinkPolicy) Valid() bool { return p == SymlinkReplace || p == SymlinkFollow }

// WriteOptions tune WriteFile. The zero value means SymlinkReplace and mode
// 0644 for a file that does not exist yet.
type WriteOptions struct {
	Symlink SymlinkPolicy
	// Perm is the mode of a file created from nothing or replacing a
	// link. A file that exists keeps its mode and owner.
	Perm fs.FileMode
}

// Outcome says what WriteFile did.
type Outcome int

const (
	// Unchanged: the file already held the content; nothing was written,
	// so its mtime did not move and readers have nothing to reload.
	Unchanged Outcome = iota
	// Renamed: a complete temporary file was renamed over the target.
	Renamed
	// InPlace: the target is a mount point and was overwritten in place.
	InPlace
)

func (o Outcome) String() string {
	switch o {
	case Unchanged:
		return "unchanged"
	case Renamed:
		return "renamed"
	case InPlace:
		return "in place"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// WriteFile makes path hold data without a reader ever seeing it empty,
// partial or missing, and without touching it when it already holds data.
//
// The content goes to a temporary file in the same directory, which is
// synced and renamed over path; then the directory is synced so the rename
// survives a crash. When path is a mount point (a file bind-mounted into a
// container) rename fails with EBUSY and the file is overwritten in place
// instead: a longer file is first grown with a comment after the old
// content; then the new content goes at offset 0, padded to the file's
// length with a comment line, and the file is truncated to the content's
// length. The file is thus never empty and never shorter than the old or
// the new content, and between the steps a reader sees complete old or new
// directives followed by a comment. What the kernel does not provide is
// atomicity of the single write against a concurrent read of a regular
// file: a reader racing the copy itself (a window of nanoseconds) may see
// the new content's beginning followed by the old content's end. That is
// why rename is always tried first.
func WriteFile(path string, data []byte, opt WriteOptions) (Outcome, error) {
	if opt.Symlink == "" {
		opt.Symlink = SymlinkReplace
	}
	if !opt.Symlink.Valid() {
		return Unchanged, fmt.Errorf("write %s: unknown symlink policy %q", path, opt.Symlink)
	}
	if opt.Perm == 0 {
		opt.Perm = 0o644
	}
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Renamed, replace(path, data, opt.Perm, nil)
	case err != nil:
		return Unchanged, fmt.Errorf("write %s: %w", path, err)
	case st.Mode()&fs.ModeSymlink != 0:
		if opt.Symlink == SymlinkFollow {
			target, err := filepath.EvalSymlinks(path)
			if err != nil {
				return Unchanged, fmt.Errorf("write %s: follow link: %w", path, err)
			}
			return WriteFile(target, data, WriteOptions{Symlink: SymlinkReplace, Perm: opt.Perm})
		}
		// Replace the link even when its target holds data already: the
		// target is someone else's file and will change under us.
		return Renamed, replace(path, data, opt.Perm, nil)
	case !st.Mode().IsRegular():
		return Unchanged, fmt.Errorf("write %s: not a regular file (%s)", path, st.Mode().Type())
	}
	cur, err := os.ReadFile(path)
	if err != nil {
		return Unchanged, fmt.Errorf("write %s: read current content: %w", path, err)
	}
	if bytes.Equal(cur, data) {
		return Unchanged, nil
	}
	err = replace(path, data, st.Mode().Perm(), st)
	if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV) {
		if err := writeInPlace(path, data); err != nil {
			return Unchanged, err
		}
		return InPlace, nil
	}
	if err != nil {
		return Unchanged, err
	}
	return Renamed, nil
}

// replace writes data to a temporary file next to path and renames it over
// path. When st is the current file's information, the new file gets its
// owner (best effort: it needs privileges).
func replace(path string, data []byte, perm fs.FileMode, st fs.FileInfo) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	// CreateTemp makes the file 0600; readers need the target's mode.
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if st != nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			_ = tmp.Chown(int(sys.Uid), int(sys.Gid))
		}
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: rename: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// writeInPlace overwrites path without ever making it shorter than the
// new content: see WriteFile.
func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("write %s in place: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("write %s in place: %w", path, err)
	}
	size := int(st.Size())
	if len(data) > size {
		// Grow the file first, with a comment after the old content, so
		// that the file never looks cut short while the new content is
		// copied over it.
		var last [1]byte
		if size > 0 {
			if _, err := f.ReadAt(last[:], int64(size-1)); err != nil {
				return fmt.Errorf("write %s in place: %w", path, err)
			}
		}
		var tail []byte
		if size > 0 && last[0] != '\n' {
			tail = []byte{'\n'}
		}
		tail = padTo(tail, len(data)-size)
		if _, err := f.WriteAt(tail, int64(size)); err != nil {
			return fmt.Errorf("write %s in place: %w", path, err)
		}
	}
	if _, err := f.WriteAt(padTo(data, size), 0); err != nil {
		return fmt.Errorf("write %s in place: %w", path, err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		return fmt.Errorf("write %s in place: truncate: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s in place: fsync: %w", path, err)
	}
	return nil
}

// padTo returns data extended to size bytes with a comment line, so that
// until the file is truncated its tail of old content is hidden in a
// comment instead of read as directives.
func padTo(data []byte, size int) []byte {
	if len(data) >= size {
		return data
	}
	out := make([]byte, 0, size)
	out = append(out, data...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	if n := size - len(out); n > 0 {
		out = append(out, bytes.Repeat([]byte{'#'}, n-1)...)
		out = append(out, '\n')
	}
	return out
}
