// Package export builds writ's OpenTelemetry tracer provider from the
// tracing section of the configuration: spans batched and sent over
// OTLP/HTTP (protobuf) to the configured collector.
package export

import (
	"context"
	"fmt"
	"net/url"
	"runtime/debug"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/writ-id/writ/internal/config"
)

// New returns the tracer provider cfg describes, or nil when cfg names no
// endpoint (tracing off: no exporter, no provider, nothing done per
// request). The caller shuts the provider down, which flushes its spans.
func New(cfg config.Tracing) (*sdktrace.TracerProvider, error) {
	if cfg.Endpoint == "" {
		return nil, nil
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("tracing: endpoint: %w", err)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String())}
	if len(cfg.Headers) > 0 {
		h := make(map[string]string, len(cfg.Headers))
		for k, v := range cfg.Headers {
			h[k] = v.Reveal()
		}
		opts = append(opts, otlptracehttp.WithHeaders(h))
	}
	// New does not connect: an unreachable collector costs dropped spans
	// (logged by OpenTelemetry), never a failed start.
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	ratio := 1.0
	if cfg.SampleRatio != nil {
		ratio = *cfg.SampleRatio
	}
	name := cfg.ServiceName
	if name == "" {
		name = "writ"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if v := version(); v != "" {
		attrs = append(attrs, attribute.String("service.version", v))
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	), nil
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && !strings.HasPrefix(bi.Main.Version, "(") {
		return bi.Main.Version
	}
	return ""
}
