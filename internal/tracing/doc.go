// Package tracing owns how writ and its SDK take part in OpenTelemetry
// traces: the server span of each request (Handler), client spans whose
// context travels in the W3C traceparent header (StartClient, Inject), and
// the identity of the caller as span attributes once it is known
// (SetIdentity). It uses the OpenTelemetry API only; the exporter lives in
// the export subpackage, so that services importing the SDK do not link
// it.
//
// Tracing off means no provider at all: Handler returns the handler
// unchanged and the other functions do nothing on a context without a
// recording span.
package tracing
