// Package gateway is writ's API gateway: routes from configuration
// ("METHOD /path/{param}/{proxy+}"), a JWT authorizer per route (keys from
// the issuer's JWKS, cached; claims checked as API Gateway's JWT authorizer
// does), and a streaming reverse proxy that carries the caller's identity
// to the upstream — the same token (propagate: forward) or one exchanged
// for the upstream's audience (propagate: exchange, RFC 8693).
package gateway
