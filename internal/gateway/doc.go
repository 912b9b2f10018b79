// Package gateway is writ's API gateway, an http.Handler:
//
//   - routes from configuration ("METHOD /path/{param}/{proxy+}", ANY); the
//     most specific route wins (literal over {param} over {proxy+}, segment
//     by segment, then a method over ANY); conflicting routes are refused
//     when the gateway is built; 404, and 405 with Allow;
//   - a JWT authorizer per route, with API Gateway's checks (signature with
//     the algorithm of the issuer's published key, iss, exp/nbf with skew,
//     token_use, aud else client_id) plus every scope the route names, over
//     a jwks.Verifier (keys and verified tokens cached); refusals are 401 or
//     403 with an RFC 6750 WWW-Authenticate header;
//   - a streaming reverse proxy to HTTP upstreams that carries the caller's
//     identity — the same token (propagate: forward) or one exchanged as
//     the gateway's own client for the route's audience (propagate:
//     exchange, RFC 8693, through sdk.Exchanger) — with X-Request-Id,
//     traceparent and X-Forwarded-*;
//   - functions: programs speaking the AWS Lambda Runtime API (unmodified
//     aws-lambda-go binaries), warm processes invoked with API Gateway HTTP
//     API payload format 2.0 events;
//   - per-route limits: requests per second per subject, body size, CORS.
//
// Every decision (allow, deny, failed exchange) is an audit event. With
// Options.Tracer, each upstream call and function invocation is an
// OpenTelemetry client span under the listener's server span.
package gateway
