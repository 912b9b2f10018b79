package oidc

import (
	"fmt"
	"net/http"

	"github.com/writ-id/writ/internal/userpool"
)

// Discovery is a pool's OpenID Provider metadata (OpenID Connect Discovery
// 1.0 §3), which is also its RFC 8414 authorization server metadata.
// Every endpoint is an absolute URL under the pool's issuer.
type Discovery struct {
	Issuer                                    string   `json:"issuer"`
	AuthorizationEndpoint                     string   `json:"authorization_endpoint"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	UserInfoEndpoint                          string   `json:"userinfo_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	EndSessionEndpoint                        string   `json:"end_session_endpoint"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	ResponseModesSupported                    []string `json:"response_modes_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported             []string `json:"code_challenge_methods_supported"`
	SubjectTypesSupported                     []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported          []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValues         []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	PromptValuesSupported                     []string `json:"prompt_values_supported"`
	ScopesSupported                           []string `json:"scopes_supported"`
	ClaimsSupported                           []string `json:"claims_supported"`
	RequestParameterSupported                 bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported              bool     `json:"request_uri_parameter_supported"`
}

// confidentialAuthMethods are the client authentication methods of the
// token, revocation and introspection endpoints; public clients send
// client_id alone ("none").
var confidentialAuthMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}

// DiscoveryFor returns the metadata document of pool p.
func DiscoveryFor(p *userpool.Pool) Discovery {
	iss := p.Issuer()
	scopes := []string{"openid", "email", "profile", "phone", userpool.ScopeAdmin}
	for _, rs := range p.Config().ResourceServers {
		for _, s := range rs.Scopes {
			scopes = append(scopes, rs.Identifier+"/"+s)
		}
	}
	return Discovery{
		Issuer:                                    iss,
		AuthorizationEndpoint:                     iss + "/oauth2/authorize",
		TokenEndpoint:                             iss + "/oauth2/token",
		UserInfoEndpoint:                          iss + "/oauth2/userInfo",
		JWKSURI:                                   iss + "/.well-known/jwks.json",
		RevocationEndpoint:                        iss + "/oauth2/revoke",
		IntrospectionEndpoint:                     iss + "/oauth2/introspect",
		EndSessionEndpoint:                        iss + "/logout",
		ResponseTypesSupported:                    []string{"code"},
		ResponseModesSupported:                    []string{"query"},
		GrantTypesSupported:                       []string{grantAuthorizationCode, grantRefreshToken, grantClientCredentials, grantTokenExchange},
		CodeChallengeMethodsSupported:             []string{"S256"},
		SubjectTypesSupported:                     []string{"public"},
		IDTokenSigningAlgValuesSupported:          []string{p.Config().SigningAlg},
		TokenEndpointAuthMethodsSupported:         append(append([]string{}, confidentialAuthMethods...), "none"),
		TokenEndpointAuthSigningAlgValues:         assertionAlgs,
		RevocationEndpointAuthMethodsSupported:    append(append([]string{}, confidentialAuthMethods...), "none"),
		IntrospectionEndpointAuthMethodsSupported: confidentialAuthMethods,
		PromptValuesSupported:                     []string{"none", "login"},
		ScopesSupported:                           scopes,
		ClaimsSupported: []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "token_use", "cognito:username",
			"cognito:groups", "cognito:roles", "cognito:preferred_role", "email", "email_verified", "amr", "act", "may_act"},
	}
}

func (h *Handler) discovery(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, DiscoveryFor(p))
}

func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) {
	p, ok := h.pool(w, r)
	if !ok {
		return
	}
	set, err := p.Keys().JWKS(r.Context(), p.ID())
	if err != nil {
		h.log.Error("oidc: jwks", "pool", p.ID(), "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	maxAge := int(p.Keys().JWKSMaxAge().Seconds())
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d, must-revalidate", maxAge))
	writeJSON(w, http.StatusOK, set)
}
