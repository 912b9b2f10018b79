// Package userpool owns user pools: users, passwords (argon2id), TOTP MFA,
// groups, app clients, auth flows with their challenges and single-use
// sessions, token issuance and refresh-token rotation, login throttling and
// the mail sent for confirmation, reset and email-verification codes. It
// speaks no protocol: the Cognito JSON adapter and the OAuth2 endpoints
// call it, and its errors carry Cognito's exception names with a message
// safe to show a user.
package userpool
