package config

import "time"

// Config is the whole writ configuration file (see examples/writ.yaml).
// Field comments state each default; Load fills defaults in for the keys
// the file leaves out. A number or duration written as 0 is 0: Load
// refuses it where 0 means nothing (a token lifetime of 0) rather than
// take it for the default.
type Config struct {
	// Path is the file the configuration was loaded from (not a YAML key).
	Path string `yaml:"-"`
	// Dir is the directory relative paths resolve against (not a YAML key).
	Dir string `yaml:"-"`
	// Warnings are likely mistakes writ still runs with, each at its YAML
	// path and line (not a YAML key): Load returns them with the
	// configuration for its caller to show, as the problems it refuses
	// are shown. Today: a trusted_proxies entry so broad that clients can
	// set their own address (clientip.Broad).
	Warnings []FieldError `yaml:"-"`

	// Region is the AWS region writ answers for. Default us-east-1.
	Region string `yaml:"region"`
	// Account is the 12-digit account id used in ARNs. Default 000000000000.
	Account string `yaml:"account"`
	// DataDir holds the SQLite database, the master key and object data.
	// Default ./writ-data, resolved against Dir.
	DataDir string `yaml:"data_dir"`
	// Store is a PostgreSQL URL (postgres://...); empty means SQLite under DataDir.
	Store string `yaml:"store"`
	// StorePool tunes the PostgreSQL connection pool.
	StorePool StorePool `yaml:"store_pool"`
	// MasterKey is a base64 (std or URL, 32 bytes) key; empty means the file
	// master.key under DataDir, created when absent.
	MasterKey Secret `yaml:"master_key"`
	// PreviousMasterKeys are earlier master keys, kept while what they
	// sealed or keyed is still in use (sealed signing keys, TOTP secrets,
	// session tokens, client-secret hashes, audit checkpoints): values are
	// opened and checked with any of them, and made with MasterKey only.
	PreviousMasterKeys []Secret `yaml:"previous_master_keys"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// Mail configures outgoing mail; without SMTP, mail goes to the outbox.
	Mail Mail `yaml:"mail"`
	// Keys configures signing-key rotation.
	Keys Keys `yaml:"keys"`
	// Tracing exports OpenTelemetry traces; off unless it names an endpoint.
	Tracing Tracing `yaml:"tracing"`

	Serve         Serve          `yaml:"serve"`
	UserPools     []UserPool     `yaml:"user_pools"`
	IdentityPools []IdentityPool `yaml:"identity_pools"`
	IAM           IAM            `yaml:"iam"`
	Objects       Objects        `yaml:"objects"`
	Gateway       Gateway        `yaml:"gateway"`
}

// StorePool tunes the PostgreSQL pool. Zero values mean the driver defaults
// (MaxOpen 10, MaxIdle 5, MaxLifetime 30m).
type StorePool struct {
	MaxOpen     int           `yaml:"max_open"`
	MaxIdle     int           `yaml:"max_idle"`
	MaxLifetime time.Duration `yaml:"max_lifetime"`
}

// Log configures log/slog output.
type Log struct {
	// Format is text (default) or json.
	Format string `yaml:"format"`
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
}

// Mail configures the mail sender.
type Mail struct {
	// SMTP is host:port of an SMTP server; empty means the store outbox.
	SMTP string `yaml:"smtp"`
	// From is the sender's address, bare or with a display name
	// ("Example <no-reply@example.com>"); default no-reply@writ.local.
	From     string `yaml:"from"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// TLS is how mail goes encrypted: "starttls" (default: STARTTLS
	// whenever the server offers it, plain text otherwise), "required"
	// (STARTTLS or nothing is sent) or "implicit" (TLS from the first
	// byte, as on port 465). Certificates are always verified.
	TLS string `yaml:"tls"`
}

// Keys configures signing keys.
type Keys struct {
	// ActivationDelay is how long a new key is published before it signs.
	// Default 10m; JWKS Cache-Control max-age is kept below it.
	ActivationDelay time.Duration `yaml:"activation_delay"`
	// RotateEvery rotates automatically at this age; 0 (default) never.
	RotateEvery time.Duration `yaml:"rotate_every"`
}

// Tracing configures OpenTelemetry tracing: a server span for every request
// on every listener, the gateway's upstream and function spans, W3C
// traceparent propagation, exported over OTLP/HTTP (protobuf).
type Tracing struct {
	// Endpoint is the collector's OTLP/HTTP URL: a base URL such as
	// http://127.0.0.1:4318 (to which /v1/traces is appended) or a URL with
	// the traces path. Empty (the default) turns tracing off.
	Endpoint string `yaml:"endpoint"`
	// Headers are sent with every export (e.g. an API key; env:NAME values).
	Headers map[string]Secret `yaml:"headers"`
	// SampleRatio is the share of new traces recorded, 0 to 1; a caller's
	// sampled flag is followed. Default 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name of writ's spans; default writ.
	ServiceName string `yaml:"service_name"`
}

// Serve lists the components to run. A nil entry is not run.
type Serve struct {
	IDP      *Listener `yaml:"idp"`
	Identity *Listener `yaml:"identity"`
	Objects  *Listener `yaml:"objects"`
	Gateway  *Listener `yaml:"gateway"`
	Ops      *Listener `yaml:"ops"`
}

// Listener is one component's listener.
type Listener struct {
	// Listen is host:port; port 0 picks a free port.
	Listen string `yaml:"listen"`
	// PublicURL is how clients reach it; default http://<actual listen address>.
	PublicURL string `yaml:"public_url"`
	// TrustedProxies are the load balancers and reverse proxies in front of
	// the listener, as IP addresses or CIDR prefixes (IPv4 or IPv6, e.g.
	// 10.0.0.0/8, fd00::/8, 127.0.0.1). A request whose TCP peer is one of
	// them has its client address taken from X-Forwarded-For, or from the
	// for= of a Forwarded header (RFC 7239) when it has no X-Forwarded-For:
	// the rightmost entry that is not itself a trusted proxy (entries left
	// of it are the client's to write). Every use of the client's address
	// follows it: the per-source sign-in and code throttles, the gateway's
	// per-address rate limit, aws:SourceIp, the audit trail's source_ip,
	// the span's client.address and the X-Forwarded-For the gateway sends
	// upstream. Default: none, and both headers are ignored: the client is
	// the TCP peer. List only proxies that set X-Forwarded-For (or
	// Forwarded) themselves: a trusted address may claim to forward for any
	// client. An entry broader than an IPv4 /8 or an IPv6 /16 (0.0.0.0/0,
	// ::/0) is loaded with a warning (Config.Warnings).
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// UserPool is one user pool.
type UserPool struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// SigningAlg is ES256 (default), EdDSA or RS256.
	SigningAlg string `yaml:"signing_alg"`
	// MFA is off, optional (default) or required.
	MFA string `yaml:"mfa"`
	// SelfSignup allows SignUp; default true.
	SelfSignup      *bool            `yaml:"self_signup"`
	PasswordPolicy  PasswordPolicy   `yaml:"password_policy"`
	Lockout         Lockout          `yaml:"lockout"`
	Tokens          TokenLifetimes   `yaml:"tokens"`
	ResourceServers []ResourceServer `yaml:"resource_servers"`
	Groups          []Group          `yaml:"groups"`
	Clients         []Client         `yaml:"clients"`
	Users           []User           `yaml:"users"`
	// UserWritableAttributes are the custom attributes (custom:NAME) that
	// users may write themselves (SignUp, UpdateUserAttributes,
	// DeleteUserAttributes, NEW_PASSWORD_REQUIRED). Every other custom
	// attribute is written by administrators only (the admin API and seed
	// users). Default: none.
	UserWritableAttributes []string `yaml:"user_writable_attributes"`
	// MaxActorChain bounds token-exchange act nesting; default 5.
	MaxActorChain int `yaml:"max_actor_chain"`
}

// PasswordPolicy is the pool's password policy. Default min_length 8, all
// requirements false.
type PasswordPolicy struct {
	MinLength        int  `yaml:"min_length"`
	RequireLowercase bool `yaml:"require_lowercase"`
	RequireUppercase bool `yaml:"require_uppercase"`
	RequireDigits    bool `yaml:"require_digits"`
	RequireSymbols   bool `yaml:"require_symbols"`
}

// Lockout locks a user after MaxFailures failed sign-ins within Window.
// Default 5 failures in 15m.
type Lockout struct {
	MaxFailures int           `yaml:"max_failures"`
	Window      time.Duration `yaml:"window"`
}

// TokenLifetimes are token lifetimes. Defaults: id 1h, access 1h, refresh
// 720h, rotate_refresh false, refresh_grace 30s, session 3m, code 5m.
// RefreshGrace 0 is no grace: a rotated refresh token presented again is
// always reuse, which revokes its family.
type TokenLifetimes struct {
	ID            time.Duration `yaml:"id"`
	Access        time.Duration `yaml:"access"`
	Refresh       time.Duration `yaml:"refresh"`
	RotateRefresh bool          `yaml:"rotate_refresh"`
	RefreshGrace  time.Duration `yaml:"refresh_grace"`
	Session       time.Duration `yaml:"session"`
	Code          time.Duration `yaml:"code"`
}

// ResourceServer is an API with custom scopes.
type ResourceServer struct {
	Identifier string   `yaml:"identifier"`
	Name       string   `yaml:"name"`
	Scopes     []string `yaml:"scopes"`
}

// Group is a user-pool group; Role names an iam.roles entry.
type Group struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Precedence orders a user's groups for the roles in its tokens
	// (lowest first); unset, a group comes after those that have one.
	Precedence *int   `yaml:"precedence"`
	Role       string `yaml:"role"`
}

// Client is an app client.
type Client struct {
	ClientID string `yaml:"client_id"`
	Name     string `yaml:"name"`
	// Public clients have no secret and must use PKCE.
	Public bool   `yaml:"public"`
	Secret Secret `yaml:"secret"`
	// Flows: authorization_code, refresh_token, user_password,
	// client_credentials, token_exchange, admin_user_password.
	Flows             []string `yaml:"flows"`
	RedirectURIs      []string `yaml:"redirect_uris"`
	LogoutURIs        []string `yaml:"logout_uris"`
	Scopes            []string `yaml:"scopes"`
	ExchangeAudiences []string `yaml:"exchange_audiences"`
	// JWKS is a JSON Web Key Set (inline JSON) for private_key_jwt.
	JWKS string `yaml:"jwks"`
	// AuditComponents are the components this client may post audit events
	// as (POST /audit/events, scope writ/audit.write); none: any that writ
	// does not reserve for itself.
	AuditComponents []string `yaml:"audit_components"`
}

// User is a seed account, created at start when missing.
type User struct {
	Username      string            `yaml:"username"`
	Password      Secret            `yaml:"password"`
	Email         string            `yaml:"email"`
	EmailVerified bool              `yaml:"email_verified"`
	Groups        []string          `yaml:"groups"`
	TOTPSecret    Secret            `yaml:"totp_secret"`
	Attributes    map[string]string `yaml:"attributes"`
}

// IdentityPool is a Cognito identity pool.
type IdentityPool struct {
	ID                   string `yaml:"id"`
	Name                 string `yaml:"name"`
	AllowUnauthenticated bool   `yaml:"allow_unauthenticated"`
	// AllowClassicFlow enables the basic (classic) flow: GetOpenIdToken,
	// whose token the client takes to AssumeRoleWithWebIdentity for a role
	// of its choosing, which the role's trust policy alone then limits.
	// Off by default, as on new Cognito identity pools: the enhanced flow
	// (GetCredentialsForIdentity) applies the pool's role mapping.
	AllowClassicFlow    bool               `yaml:"allow_classic_flow"`
	Providers           []IdentityProvider `yaml:"providers"`
	AuthenticatedRole   string             `yaml:"authenticated_role"`
	UnauthenticatedRole string             `yaml:"unauthenticated_role"`
	// PrincipalTags maps session tag -> token claim.
	PrincipalTags map[string]string `yaml:"principal_tags"`
}

// IdentityProvider is a user pool accepted by an identity pool.
type IdentityProvider struct {
	UserPool  string   `yaml:"user_pool"`
	ClientIDs []string `yaml:"client_ids"`
	// RoleResolution is token or rules; empty means the authenticated role.
	RoleResolution string `yaml:"role_resolution"`
	// Ambiguous is authenticated_role (default) or deny.
	Ambiguous string     `yaml:"ambiguous"`
	Rules     []RoleRule `yaml:"rules"`
}

// RoleRule maps a claim to a role (first match wins).
type RoleRule struct {
	Claim string `yaml:"claim"`
	// Match is Equals, Contains, StartsWith or NotEqual.
	Match string `yaml:"match"`
	Value string `yaml:"value"`
	Role  string `yaml:"role"`
}

// IAM holds roles, OIDC providers and long-term users.
type IAM struct {
	OIDCProviders []OIDCProvider `yaml:"oidc_providers"`
	Roles         []Role         `yaml:"roles"`
	Users         []IAMUser      `yaml:"users"`
}

// OIDCProvider is an issuer whose tokens AssumeRoleWithWebIdentity accepts.
type OIDCProvider struct {
	URL       string   `yaml:"url"`
	ClientIDs []string `yaml:"client_ids"`
}

// Role is an IAM role. Policy documents are IAM JSON (a YAML mapping or a
// JSON string in the file).
type Role struct {
	Name       string        `yaml:"name"`
	MaxSession time.Duration `yaml:"max_session"` // default 1h, at most 12h
	Trust      PolicyDoc     `yaml:"trust"`
	Policy     PolicyDoc     `yaml:"policy"`
	// Boundary is an optional permissions boundary.
	Boundary PolicyDoc `yaml:"boundary"`
}

// IAMUser has long-term SigV4 credentials.
type IAMUser struct {
	Name            string    `yaml:"name"`
	AccessKeyID     string    `yaml:"access_key_id"`
	SecretAccessKey Secret    `yaml:"secret_access_key"`
	Policy          PolicyDoc `yaml:"policy"`
}

// Objects configures the object store.
type Objects struct {
	Buckets []string `yaml:"buckets"`
	// BucketPolicies maps bucket name -> policy document.
	BucketPolicies map[string]PolicyDoc `yaml:"bucket_policies"`
	// MaxObjectSize bounds a single PUT; default (or 0) 5 GiB.
	MaxObjectSize int64 `yaml:"max_object_size"`
}

// Gateway configures the API gateway.
type Gateway struct {
	Client      GatewayClient `yaml:"client"`
	Authorizers []Authorizer  `yaml:"authorizers"`
	Routes      []Route       `yaml:"routes"`
	Functions   []Function    `yaml:"functions"`
}

// GatewayClient is the gateway's own app client (for propagate: exchange).
type GatewayClient struct {
	ClientID string `yaml:"client_id"`
	Secret   Secret `yaml:"secret"`
	UserPool string `yaml:"user_pool"`
}

// Authorizer is a JWT authorizer.
type Authorizer struct {
	Name      string   `yaml:"name"`
	Issuer    string   `yaml:"issuer"`
	Audiences []string `yaml:"audiences"`
	// TokenUse lists accepted token_use values; default [access].
	TokenUse []string `yaml:"token_use"`
	// Skew is the allowed clock skew for exp/nbf; default 30s, 0 for none.
	Skew time.Duration `yaml:"skew"`
}

// Route is a gateway route.
type Route struct {
	// Route is "METHOD /path/{param}/{proxy+}" (METHOD may be ANY).
	Route      string   `yaml:"route"`
	Authorizer string   `yaml:"authorizer"`
	Scopes     []string `yaml:"scopes"`
	Upstream   string   `yaml:"upstream"`
	Function   string   `yaml:"function"`
	// Propagate is forward (default) or exchange.
	Propagate string `yaml:"propagate"`
	Audience  string `yaml:"audience"`
	// Timeout for the upstream; default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxBody bounds the request body in bytes; default (or 0) 10 MiB.
	MaxBody int64 `yaml:"max_body"`
	// RateLimit is requests per second per subject; 0 = unlimited.
	RateLimit float64 `yaml:"rate_limit"`
	CORS      *CORS   `yaml:"cors"`
}

// CORS configures cross-origin access for browser clients.
type CORS struct {
	AllowOrigins []string      `yaml:"allow_origins"`
	AllowHeaders []string      `yaml:"allow_headers"`
	MaxAge       time.Duration `yaml:"max_age"`
}

// Function is a program speaking the Lambda Runtime API.
type Function struct {
	Name    string   `yaml:"name"`
	Command []string `yaml:"command"`
	// Timeout per invocation; default 3s.
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency is the number of warm processes; default 1.
	Concurrency int               `yaml:"concurrency"`
	Env         map[string]string `yaml:"env"`
	MemoryMB    int               `yaml:"memory_mb"`
}
