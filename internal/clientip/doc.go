// Package clientip finds a request's client address behind the reverse
// proxies a listener trusts (its trusted_proxies), from X-Forwarded-For
// or the standard Forwarded header (RFC 7239; Trusted.Client says which),
// in the one way a client cannot spoof: read from the right, past the
// trusted proxies' own addresses, to the first address no trusted proxy
// has. It parses and decides only; internal/app applies it to each
// listener's requests. It imports neither net/http nor net, so the
// configuration's validation uses the same parser as serving.
package clientip
