// Package migrations holds the personal-data keys' SQL migrations (goose format), embedded.
// internal/schema lists every package's set in the order they apply.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed *.sql
var files embed.FS

// FS returns the migrations, *.sql at its root.
func FS() fs.FS { return files }
