package iam

import (
	"strings"
	"unsafe"
)

// Context holds a request's condition keys. Keys are compared
// case-insensitively (as IAM does); Get receives lower-cased keys.
type Context interface {
	Get(lowerKey string) ([]string, bool)
}

// MapContext is a Context over a map; build it with NewContext so that its
// keys are lower-cased.
type MapContext map[string][]string

// NewContext returns a MapContext with lower-cased keys.
func NewContext(m map[string][]string) MapContext {
	out := make(MapContext, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// Set sets a key (any case).
func (c MapContext) Set(key string, values ...string) { c[strings.ToLower(key)] = values }

// Get implements Context.
func (c MapContext) Get(lowerKey string) ([]string, bool) {
	v, ok := c[lowerKey]
	return v, ok
}

// unsafeString views b as a string without copying; the caller must not
// keep it past b's reuse.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
