package cache

import (
	"fmt"
	"net/http"
)

// FlushHandler returns an HTTP handler that flushes the cache: POST with
// no parameter empties it, POST with name=NAME removes every entry for that
// name. It answers with the number of entries removed. The metrics server
// mounts it (for example at /cache/flush); it must only listen on a trusted
// address.
func (c *Cache) FlushHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		name := r.FormValue("name")
		if name == "" {
			n := c.Stats().Entries
			c.Flush()
			fmt.Fprintf(w, "flushed %d entries\n", n)
			return
		}
		n, err := c.FlushName(name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "flushed %d entries for %s\n", n, name)
	})
}
