// Package sdk is what a Go service behind the writ gateway imports.
//
// A Verifier checks the token of each incoming request offline — the same
// checks, key cache and verified-token cache as the gateway's JWT
// authorizer: signature with the algorithm of the issuer's published key,
// iss, exp/nbf with a small skew, token_use, audience (aud, else
// client_id) and scopes — and its Middleware puts the caller's Identity
// (claims, raw token, actor chain) in the request context.
//
// A Transport carries that identity to the next service: the same token,
// or one exchanged (RFC 8693) with the service's own client credentials
// for a token bound to the next service's audience, whose act claim names
// every service the request crossed. The request id (X-Request-Id) and the
// W3C traceparent travel with it, so one request keeps one id and one trace
// across every hop.
//
// With an OpenTelemetry tracer provider (Config.TracerProvider, or the
// global one), Middleware makes a server span per request carrying the
// caller's identity, and Transport and Exchanger make client spans whose
// traceparent the next hop continues.
//
// An AuditClient sends the service's own audit events (AuditEvent) to
// writ's trail, POST /audit/events on the identity listener, in batches
// with a client_credentials token holding AuditScope; LogAuditSink keeps
// them in the service's log instead.
package sdk
