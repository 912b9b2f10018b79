// Package oidc serves each user pool's OpenID Connect and OAuth 2.0
// endpoints under its issuer (<public_url>/<pool id>): discovery
// (OpenID Connect Discovery 1.0, RFC 8414) and the JWKS (RFC 7517).
package oidc
