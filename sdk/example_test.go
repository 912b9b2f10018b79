package sdk_test

import (
	"fmt"
	"net/http"

	"github.com/writ-id/writ/sdk"
)

// A service behind the gateway verifies callers and reads who they are.
func ExampleVerifier_Middleware() {
	v := sdk.NewVerifier(sdk.Config{
		Issuer:    "http://127.0.0.1:8400/us-east-1_WritDemo1",
		Audiences: []string{"demo-web"},
		Scopes:    []string{"https://api.demo.local/orders.read"},
	})
	defer v.Close()
	handler := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := sdk.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s (via %v)", id.Username, id.ActorChain)
	}))
	_ = http.ListenAndServe // e.g. http.ListenAndServe("127.0.0.1:8411", handler)
	_ = handler
}

// A service calls the next one with a token bound to that service's
// audience; the new token's act claim names this service.
func ExampleTransport() {
	client := &http.Client{Transport: &sdk.Transport{
		Audience: "files-service",
		Exchange: &sdk.ClientCredentials{
			TokenURL:     "http://127.0.0.1:8400/us-east-1_WritDemo1/oauth2/token",
			ClientID:     "orders-service",
			ClientSecret: "orders-demo-secret",
		},
	}}
	// Inside a handler wrapped by Middleware, pass the request's context:
	//   req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://files/...", nil)
	//   resp, err := client.Do(req)
	_ = client
}
