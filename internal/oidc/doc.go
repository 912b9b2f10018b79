// Package oidc serves each user pool's OAuth 2.0 and OpenID Connect
// endpoints and its hosted sign-in pages under the pool's issuer
// (<idp public_url>/<pool id>), at Cognito's paths where Cognito has them:
//
//   - /.well-known/openid-configuration (and oauth-authorization-server):
//     discovery (OpenID Connect Discovery 1.0, RFC 8414); /.well-known/jwks.json.
//   - /oauth2/authorize: the authorization code flow with PKCE (RFC 6749
//     §4.1, RFC 7636; S256 only, required of public clients), exact
//     redirect URIs, prompt and max_age, state and nonce.
//   - /oauth2/token: authorization_code, refresh_token, client_credentials
//     and RFC 8693 token exchange, with client_secret_basic,
//     client_secret_post, private_key_jwt (RFC 7523) or a public client id.
//   - /oauth2/revoke (RFC 7009), /oauth2/introspect (RFC 7662),
//     /oauth2/userInfo (OpenID Connect Core §5.3).
//   - /login, /login/totp, /login/enrol, /login/newpassword, /signup,
//     /confirm, /forgot, /reset: the hosted pages, server-rendered from
//     embedded templates, CSRF-protected, without JavaScript;
//     /logout, which is also the end_session_endpoint.
//
// The package owns the protocol: parameters, client authentication, the
// browser session and CSRF cookies, authorization codes and the error
// shapes (RFC 6749 §5.2 JSON, RFC 6750 challenges, pages for errors that
// must not be redirected). Who may sign in and what tokens say is
// internal/userpool's.
package oidc
