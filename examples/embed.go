// Package examples holds the reference configuration (writ.yaml), embedded
// so that `writ demo` runs it from any directory, and the demo services.
package examples

import _ "embed"

// ReferenceConfig is examples/writ.yaml, byte for byte.
//
//go:embed writ.yaml
var ReferenceConfig []byte
