package app

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/auditapi"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/keys"
	"github.com/writ-id/writ/internal/token"
	"github.com/writ-id/writ/internal/tracing"
)

// tracedRecorder puts what each audit event knows of the caller (subject,
// client, actor chain, identity id, role, pool) on the span of its request,
// so that every component's span names the identity as soon as the
// component has established it, and adds the decision as a span event. An
// event without a trace id gets the span's (a request that came without a
// traceparent starts its trace at writ's server span).
type tracedRecorder struct{ next audit.Recorder }

func (t tracedRecorder) Record(ctx context.Context, e audit.Event) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		tracing.SetIdentity(ctx, tracing.Identity{Sub: e.Sub, ClientID: e.ClientID, ActorChain: e.ActorChain,
			IdentityID: e.IdentityID, Role: e.Role, PoolID: e.PoolID})
		attrs := []attribute.KeyValue{attribute.String("writ.audit.action", e.Action), attribute.String("writ.audit.outcome", e.Outcome)}
		if e.Reason != "" {
			attrs = append(attrs, attribute.String("writ.audit.reason", e.Reason))
		}
		span.AddEvent("audit", trace.WithAttributes(attrs...))
	}
	if e.TraceID == "" && audit.Request(ctx).TraceID == "" {
		e.TraceID = tracing.TraceID(ctx)
	}
	t.next.Record(ctx, e)
}

// ingestPools are the user pools whose access tokens POST /audit/events
// accepts, verified with the pools' own keys (no JWKS fetch).
func ingestPools(cfg *config.Config, idpURL string, km *keys.Manager, now func() time.Time) []auditapi.Pool {
	var out []auditapi.Pool
	for _, p := range cfg.UserPools {
		comps := map[string][]string{}
		for _, c := range p.Clients {
			if len(c.AuditComponents) > 0 {
				comps[c.ClientID] = c.AuditComponents
			}
		}
		out = append(out, auditapi.Pool{ID: p.ID, Verifier: &token.Verifier{Issuer: strings.TrimRight(idpURL, "/") + "/" + p.ID,
			Keys: km.Pool(p.ID), Now: now, Skew: 30 * time.Second}, Components: comps})
	}
	return out
}
