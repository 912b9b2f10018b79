package userpool

import "github.com/writ-id/writ/internal/store"

// HostedSecretHash returns the SECRET_HASH that the hosted sign-in pages
// present on behalf of client c for username ("" for a client without a
// secret). The pages act for the client once its registered redirect URI
// has been checked, so a confidential client's users can sign up, confirm
// and reset passwords there as its public clients' users can; the Cognito
// API keeps demanding the hash from callers.
func (p *Pool) HostedSecretHash(c store.Client, username string) string {
	if c.Public || len(c.SecretHash) == 0 {
		return ""
	}
	secret, ok := p.svc.clientSecrets()[c.ClientID]
	if !ok {
		return ""
	}
	return SecretHash(secret, username, c.ClientID)
}
