// Package config loads and validates writ's configuration file (see
// examples/writ.yaml): strict YAML decoding in which unknown keys are
// errors, every problem reported at once with its YAML path and line,
// `env:NAME` values read from the environment, relative paths resolved
// against the file's directory, and defaults documented on each field.
package config
