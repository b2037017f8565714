package service

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// fileID identifies one version of a file well enough to notice edits in
// place (size, mtime) and replacement by rename (inode, device).
type fileID struct {
	exists    bool
	size      int64
	mtime     time.Time
	dev, ino  uint64
	ctimeNsec int64
}

func statID(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileID{}, nil
	}
	if err != nil {
		return fileID{}, err
	}
	id := fileID{exists: true, size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), st.Ino
		id.ctimeNsec = int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec) // int32 fields on 32-bit platforms
	}
	return id, nil
}

// FileWatcher notices changes to one file: written in place, replaced by
// rename, created or removed. Polling the metadata is enough for a file
// edited by hand or rewritten by a resolv.conf manager, needs no inotify
// watch on the directory, and works when the file is a bind mount.
type FileWatcher struct {
	path string
	last fileID
	err  string
}

// NewFileWatcher starts watching path; changes are relative to its state
// now.
func NewFileWatcher(path string) *FileWatcher {
	w := &FileWatcher{path: path}
	w.last, _ = statID(path)
	return w
}

// Changed reports whether the file changed since the previous call (or
// since NewFileWatcher).
func (w *FileWatcher) Changed() (bool, error) {
	cur, err := statID(w.path)
	if err != nil {
		return false, err
	}
	if cur == w.last {
		return false, nil
	}
	w.last = cur
	return true, nil
}

// Run calls onChange after each change, checking every interval, until
// ctx is done. A stat error other than "does not exist" goes to onError,
// if set, once per distinct error.
func (w *FileWatcher) Run(ctx context.Context, interval time.Duration, onChange func(), onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := w.Changed()
		if err != nil {
			if onError != nil && err.Error() != w.err {
				onError(err)
			}
			w.err = err.Error()
			continue
		}
		w.err = ""
		if changed {
			onChange()
		}
	}
}
