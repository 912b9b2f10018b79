// Package keys owns writ's key material: the master key (loaded or created
// under data_dir, never logged), the keys derived from it for sealing data at
// rest, and each user pool's JWT signing keys with their rotation schedule
// and published JWKS.
//
// Rotation never breaks a verifier: a new key is published first and signs
// only after an activation delay longer than the JWKS cache lifetime; a
// retired key stays published until every token it signed has expired.
package keys
