// Package app wires writ together: it opens the store, loads the master
// and signing keys, seeds the user pools, builds each component's handler,
// listens, and shuts everything down in order. It is the one place where
// constructors meet (STYLE.md habit 10).
package app
