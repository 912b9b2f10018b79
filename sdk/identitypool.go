package sdk

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ci "github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
)

// IdentityPool trades the identity of the request being served for
// temporary AWS credentials at writ's identity pool (Cognito Identity's
// GetId and GetCredentialsForIdentity), so that a service reaches
// AWS-API resources — writ's object store, say — as its caller, under the
// role the pool chooses for them and with their own policy variables.
//
//	pool := &sdk.IdentityPool{Endpoint: "http://127.0.0.1:8401", PoolID: "us-east-1:2a7c…"}
//	s3c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(objectsURL),
//	    Credentials: pool.Credentials(r.Context())})
//
// The caller's token (from Middleware) is the login, keyed by its issuer
// without the scheme, as the pool expects; the pool must list the token's
// audience (or, for access tokens, its client) among the provider's
// client_ids. Identity ids and credentials are cached (credentials per
// token, until a minute before they expire) and concurrent requests for
// the same token share one exchange. An IdentityPool is safe for
// concurrent use; the zero value needs Endpoint and PoolID.
type IdentityPool struct {
	// Endpoint is the URL of writ's identity listener.
	Endpoint string
	// PoolID is the identity pool's id, <region>:<uuid>.
	PoolID string
	// HTTPClient reaches the endpoint; default a 10s-timeout client.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time

	once   sync.Once
	client *ci.Client
	mu     sync.Mutex
	ids    map[string]string // login key + "|" + sub -> identity id
	creds  flightCache[[32]byte, aws.Credentials]
}

// Credentials returns a credentials provider for the identity in ctx (set
// by Middleware or NewContext); its Retrieve trades that identity's token.
// With no identity in ctx, Retrieve fails.
func (p *IdentityPool) Credentials(ctx context.Context) aws.CredentialsProvider {
	id, _ := FromContext(ctx)
	return poolCredentials{p: p, id: id, requestID: RequestID(ctx)}
}

type poolCredentials struct {
	p         *IdentityPool
	id        *Identity
	requestID string
}

func (c poolCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if c.id == nil || c.id.Token == "" {
		return aws.Credentials{}, errors.New("sdk: identity pool: no identity in the request's context (Middleware)")
	}
	if c.requestID != "" && RequestID(ctx) == "" {
		ctx = WithRequest(ctx, c.requestID, "")
	}
	return c.p.retrieve(ctx, c.id)
}

func (p *IdentityPool) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// retrieve returns id's credentials, reused until a minute before they
// expire.
func (p *IdentityPool) retrieve(ctx context.Context, id *Identity) (aws.Credentials, error) {
	return p.creds.get(ctx, sha256.Sum256([]byte(id.Token)), p.now, func(ctx context.Context) (aws.Credentials, time.Time, error) {
		c, err := p.exchange(ctx, id)
		return c, c.Expires.Add(-time.Minute), err
	})
}

// IdentityID returns the identity pool's id for the identity in ctx (the
// value of ${cognito-identity.amazonaws.com:sub} in the role's policies,
// e.g. the caller's own prefix in a bucket).
func (p *IdentityPool) IdentityID(ctx context.Context) (string, error) {
	id, ok := FromContext(ctx)
	if !ok || id.Token == "" {
		return "", errors.New("sdk: identity pool: no identity in the request's context (Middleware)")
	}
	login, logins, err := p.logins(id)
	if err != nil {
		return "", err
	}
	return p.identityID(ctx, id, login, logins)
}

// logins returns the Logins map for id's token and its key.
func (p *IdentityPool) logins(id *Identity) (string, map[string]string, error) {
	iss, _ := id.Claims["iss"].(string)
	login := strings.TrimPrefix(strings.TrimPrefix(iss, "https://"), "http://")
	if login == "" {
		return "", nil, errors.New("sdk: identity pool: the token names no issuer")
	}
	p.once.Do(func() {
		hc := p.HTTPClient
		if hc == nil {
			hc = defaultClient
		}
		region, _, _ := strings.Cut(p.PoolID, ":")
		p.client = ci.New(ci.Options{Region: region, BaseEndpoint: aws.String(strings.TrimRight(p.Endpoint, "/")),
			Credentials: aws.AnonymousCredentials{}, HTTPClient: hc})
	})
	return login, map[string]string{login: id.Token}, nil
}

func withRequestID(ctx context.Context) func(*ci.Options) {
	return func(o *ci.Options) { o.APIOptions = append(o.APIOptions, RequestIDHeader(ctx)) }
}

// identityID runs GetId unless the identity id is known.
func (p *IdentityPool) identityID(ctx context.Context, id *Identity, login string, logins map[string]string) (string, error) {
	idKey := login + "|" + id.Subject
	p.mu.Lock()
	identityID := p.ids[idKey]
	p.mu.Unlock()
	if identityID != "" {
		return identityID, nil
	}
	out, err := p.client.GetId(ctx, &ci.GetIdInput{IdentityPoolId: aws.String(p.PoolID), Logins: logins}, withRequestID(ctx))
	if err != nil {
		return "", fmt.Errorf("sdk: identity pool: GetId: %w", err)
	}
	identityID = aws.ToString(out.IdentityId)
	p.mu.Lock()
	if p.ids == nil || len(p.ids) >= maxCached {
		p.ids = map[string]string{}
	}
	p.ids[idKey] = identityID
	p.mu.Unlock()
	return identityID, nil
}

// exchange runs GetId (unless the identity id is known) and
// GetCredentialsForIdentity.
func (p *IdentityPool) exchange(ctx context.Context, id *Identity) (aws.Credentials, error) {
	login, logins, err := p.logins(id)
	if err != nil {
		return aws.Credentials{}, err
	}
	identityID, err := p.identityID(ctx, id, login, logins)
	if err != nil {
		return aws.Credentials{}, err
	}
	out, err := p.client.GetCredentialsForIdentity(ctx, &ci.GetCredentialsForIdentityInput{IdentityId: aws.String(identityID), Logins: logins}, withRequestID(ctx))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("sdk: identity pool: GetCredentialsForIdentity: %w", err)
	}
	c := out.Credentials
	if c == nil || c.Expiration == nil {
		return aws.Credentials{}, errors.New("sdk: identity pool: no credentials in the response")
	}
	return aws.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretKey),
		SessionToken: aws.ToString(c.SessionToken), Source: "writ identity pool " + p.PoolID + " (" + identityID + ")",
		CanExpire: true, Expires: *c.Expiration}, nil
}
