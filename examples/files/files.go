// Package files is the demo "files" service: it accepts only tokens bound
// to its own audience (files-service) and answers with what it saw of the
// caller, so the demo can show each hop's view.
package files

import (
	"encoding/json"
	"net/http"

	"github.com/writ-id/writ/sdk"
)

// New returns the service's handler; close stops its key refresher.
func New(issuer string) (h http.Handler, close func()) {
	v := sdk.NewVerifier(sdk.Config{Issuer: issuer, Audiences: []string{"files-service"}})
	mux := http.NewServeMux()
	mux.HandleFunc("/files/", func(w http.ResponseWriter, r *http.Request) {
		id, _ := sdk.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"service": "files", "path": r.URL.Path, "sub": id.Subject, "username": id.Username,
			"aud": id.Audience, "client_id": id.ClientID, "actor_chain": id.ActorChain, "request_id": sdk.RequestID(r.Context()),
		})
	})
	return v.Middleware(mux), v.Close
}
