// Package orders is the demo "orders" service: it verifies the caller's
// token (forwarded by the gateway) and fetches the order's attachment from
// the files service with a token exchanged for files-service's audience.
package orders

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/writ-id/writ/sdk"
)

// New returns the service's handler; close stops its key refresher.
func New(issuer, filesURL string, self sdk.ClientCredentials) (h http.Handler, close func()) {
	v := sdk.NewVerifier(sdk.Config{Issuer: issuer, Audiences: []string{"demo-web"},
		Scopes: []string{"https://api.demo.local/orders.read"}})
	files := &http.Client{Transport: &sdk.Transport{Exchange: &self, Audience: "files-service"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := sdk.FromContext(r.Context())
		req, _ := http.NewRequestWithContext(r.Context(), "GET", strings.TrimRight(filesURL, "/")+"/files/orders/"+r.PathValue("id")+".pdf", nil)
		var seen any
		resp, err := files.Do(req)
		if err != nil {
			http.Error(w, `{"message":"files service unavailable"}`, http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		json.Unmarshal(b, &seen)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"service": "orders", "order": r.PathValue("id"), "sub": id.Subject, "username": id.Username,
			"aud": id.Audience, "client_id": id.ClientID, "actor_chain": id.ActorChain, "request_id": sdk.RequestID(r.Context()),
			"files_status": resp.StatusCode, "files_saw": seen,
		})
	})
	return v.Middleware(mux), v.Close
}
