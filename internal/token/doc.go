// Package token mints and verifies writ's JWTs (RFC 7519, RFC 9068 access
// tokens, Cognito-compatible claims). It holds no keys and imports no store:
// minting takes a Signer, verification a KeySource.
package token
