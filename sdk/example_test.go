package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"log"
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
		fmt.Fprintf(w, "hello %s (via %v), request %s", id.Username, id.ActorChain, sdk.RequestID(r.Context()))
	}))
	_ = http.ListenAndServe("127.0.0.1:8411", handler)
}

// A service that receives tokens some other way (a queue message, a
// WebSocket frame) checks them with Verify.
func ExampleVerifier_Verify() {
	v := sdk.NewVerifier(sdk.Config{Issuer: "http://127.0.0.1:8400/us-east-1_WritDemo1", Audiences: []string{"files-service"}})
	defer v.Close()
	id, err := v.Verify(context.Background(), "eyJ…")
	var refusal *sdk.Error
	if errors.As(err, &refusal) {
		log.Printf("refused (%d %s): %s", refusal.Status, refusal.Code, refusal.Description)
		return
	}
	log.Printf("%s acting through %v", id.Subject, id.ActorChain)
}

// A service calls the next one with a token bound to that service's
// audience; the new token's act claim names this service.
func ExampleTransport() {
	files := &http.Client{Transport: &sdk.Transport{
		Audience: "files-service",
		Exchange: &sdk.ClientCredentials{
			TokenURL:     "http://127.0.0.1:8400/us-east-1_WritDemo1/oauth2/token",
			ClientID:     "orders-service",
			ClientSecret: "orders-demo-secret",
		},
	}}
	http.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		// r.Context() carries the caller's identity (Middleware put it there).
		req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://127.0.0.1:8412/files/"+r.PathValue("id"), nil)
		resp, err := files.Do(req)
		if err != nil {
			http.Error(w, "files unavailable", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		// …
	})
}

// Without a Transport, an Exchanger trades a token for another audience
// directly: here in a job that starts from a token it was handed.
func ExampleExchanger() {
	x := &sdk.Exchanger{Credentials: sdk.ClientCredentials{
		TokenURL:     "http://127.0.0.1:8400/us-east-1_WritDemo1/oauth2/token",
		ClientID:     "orders-service",
		ClientSecret: "orders-demo-secret",
	}}
	ctx := sdk.WithRequest(context.Background(), "job-42", "")
	tok, err := x.Exchange(ctx, "eyJ…", "files-service")
	if err != nil {
		log.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:8412/files/report.pdf", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
}
