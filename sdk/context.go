package sdk

import (
	"context"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Identity is the verified caller of a request.
type Identity struct {
	// Subject is the user's sub (or a client's id for client tokens).
	Subject  string
	Username string
	// ClientID is the client the token was issued to (the latest actor for
	// exchanged tokens).
	ClientID string
	// Audience is the token's aud: the service an exchanged token is
	// bound to; empty for a user's or a client's own access token, which
	// names its client in ClientID only (as Cognito's).
	Audience []string
	Scopes   []string
	// ActorChain lists the services that acted for the subject, the most
	// recent first (from the act claim).
	ActorChain []string
	// Claims holds every claim of the token, as decoded JSON. It is shared
	// with other requests carrying the same token: do not modify it.
	Claims map[string]any
	// Token is the raw token, for forwarding.
	Token string
}

type identityKey struct{}
type requestKey struct{}

type requestInfo struct{ id, traceparent string }

// NewContext returns ctx carrying id, as Middleware does; Transport sends
// requests made with the returned context on behalf of id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity the middleware stored.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok && id != nil
}

// WithRequest returns ctx carrying a request id and a W3C traceparent,
// which Transport and Exchanger pass on. Middleware does this with the
// incoming request's X-Request-Id and traceparent; call it where a request
// starts elsewhere (a queue consumer, a scheduled job).
func WithRequest(ctx context.Context, requestID, traceparent string) context.Context {
	return context.WithValue(ctx, requestKey{}, requestInfo{id: requestID, traceparent: traceparent})
}

// RequestID returns the X-Request-Id of the request being served.
func RequestID(ctx context.Context) string {
	ri, _ := ctx.Value(requestKey{}).(requestInfo)
	return ri.id
}

// RequestIDHeader returns an aws-sdk-go-v2 API option that sends the
// request id of ctx (the request this service is serving) with an AWS SDK
// call, so writ's identity and object components audit it under the same
// id: append it to a client's Options.APIOptions.
func RequestIDHeader(ctx context.Context) func(*middleware.Stack) error {
	id := RequestID(ctx)
	return func(stack *middleware.Stack) error {
		if id == "" {
			return nil
		}
		return smithyhttp.AddHeaderValue("X-Request-Id", id)(stack)
	}
}
