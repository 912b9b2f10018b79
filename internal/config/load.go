package config

import (
	"encoding/base64"
	"fmt"
	"maps"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/writ-id/writ/internal/auditevent"
	"github.com/writ-id/writ/internal/clientip"
	"github.com/writ-id/writ/internal/iam"
	"github.com/writ-id/writ/internal/userattr"
)

// Load reads and validates the configuration file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(b, path)
}

// Parse decodes and validates data as if read from path (which sets the
// directory relative paths resolve against).
func Parse(data []byte, path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Errors{File: path, Fields: []FieldError{{Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}}
	}
	c := &Config{Path: abs, Dir: filepath.Dir(abs)}
	d := &decoder{lines: map[string]int{}, written: map[string]bool{}}
	if root.Kind != 0 {
		d.decode(&root, reflect.ValueOf(c).Elem(), "")
	}
	c.applyDefaults(d.written)
	v := &validator{d: d}
	c.validate(v)
	if len(d.errs) > 0 {
		return nil, &Errors{File: path, Fields: d.errs}
	}
	c.Warnings = v.warnings
	return c, nil
}

// RelocateIDP points every issuer URL under oldBase (the idp's public URL
// as written in the file) at newBase instead: authorizer issuers and OIDC
// providers. Tools use it when they move the idp to another address.
func (c *Config) RelocateIDP(oldBase, newBase string) {
	oldBase, newBase = strings.TrimRight(oldBase, "/"), strings.TrimRight(newBase, "/")
	move := func(s *string) {
		if *s == oldBase || strings.HasPrefix(*s, oldBase+"/") {
			*s = newBase + strings.TrimPrefix(*s, oldBase)
		}
	}
	for i := range c.Gateway.Authorizers {
		move(&c.Gateway.Authorizers[i].Issuer)
	}
	for i := range c.IAM.OIDCProviders {
		move(&c.IAM.OIDCProviders[i].URL)
	}
	// Trust policies name OIDC providers by issuer without scheme.
	oldKey := strings.TrimPrefix(strings.TrimPrefix(oldBase, "https://"), "http://")
	newKey := strings.TrimPrefix(strings.TrimPrefix(newBase, "https://"), "http://")
	for i := range c.IAM.Roles {
		r := &c.IAM.Roles[i]
		r.Trust.b = []byte(strings.ReplaceAll(string(r.Trust.b), oldKey+"/", newKey+"/"))
	}
}

// RoleARN returns the ARN of role name in account.
func RoleARN(account, name string) string { return "arn:aws:iam::" + account + ":role/" + name }

// UserPool returns the pool with id.
func (c *Config) UserPool(id string) (*UserPool, bool) {
	for i := range c.UserPools {
		if c.UserPools[i].ID == id {
			return &c.UserPools[i], true
		}
	}
	return nil, false
}

// Role returns the IAM role with name.
func (c *Config) Role(name string) (*Role, bool) {
	for i := range c.IAM.Roles {
		if c.IAM.Roles[i].Name == name {
			return &c.IAM.Roles[i], true
		}
	}
	return nil, false
}

// Client returns the pool's client with id.
func (p *UserPool) Client(id string) (*Client, bool) {
	for i := range p.Clients {
		if p.Clients[i].ClientID == id {
			return &p.Clients[i], true
		}
	}
	return nil, false
}

// setDefault sets *p to v when the file left path out. A value written
// as zero (0, 0s, []) is kept, for validate to take as zero where zero
// means something (no grace, no skew) and to refuse where it does not.
func setDefault[T comparable](written map[string]bool, path string, p *T, v T) {
	var zero T
	if *p == zero && !written[path] {
		*p = v
	}
}

func (c *Config) applyDefaults(written map[string]bool) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defD := func(path string, d *time.Duration, v time.Duration) { setDefault(written, path, d, v) }
	defI := func(path string, i *int, v int) { setDefault(written, path, i, v) }
	def(&c.Region, "us-east-1")
	def(&c.Account, "000000000000")
	def(&c.DataDir, "./writ-data")
	if !filepath.IsAbs(c.DataDir) {
		c.DataDir = filepath.Join(c.Dir, c.DataDir)
	}
	def(&c.Log.Format, "text")
	def(&c.Log.Level, "info")
	def(&c.Mail.From, "no-reply@writ.local")
	def(&c.Mail.TLS, "starttls")
	defD("keys.activation_delay", &c.Keys.ActivationDelay, 10*time.Minute)
	def(&c.Tracing.ServiceName, "writ")
	if c.Tracing.SampleRatio == nil {
		one := 1.0
		c.Tracing.SampleRatio = &one
	}
	for i := range c.UserPools {
		p := &c.UserPools[i]
		path := fmt.Sprintf("user_pools[%d].", i)
		def(&p.SigningAlg, "ES256")
		def(&p.MFA, "optional")
		if p.SelfSignup == nil {
			t := true
			p.SelfSignup = &t
		}
		defI(path+"password_policy.min_length", &p.PasswordPolicy.MinLength, 8)
		defI(path+"lockout.max_failures", &p.Lockout.MaxFailures, 5)
		defD(path+"lockout.window", &p.Lockout.Window, 15*time.Minute)
		t := &p.Tokens
		defD(path+"tokens.id", &t.ID, time.Hour)
		defD(path+"tokens.access", &t.Access, time.Hour)
		defD(path+"tokens.refresh", &t.Refresh, 720*time.Hour)
		defD(path+"tokens.refresh_grace", &t.RefreshGrace, 30*time.Second)
		defD(path+"tokens.session", &t.Session, 3*time.Minute)
		defD(path+"tokens.code", &t.Code, 5*time.Minute)
		defI(path+"max_actor_chain", &p.MaxActorChain, 5)
	}
	for i := range c.IdentityPools {
		for j := range c.IdentityPools[i].Providers {
			def(&c.IdentityPools[i].Providers[j].Ambiguous, "authenticated_role")
		}
	}
	for i := range c.IAM.Roles {
		defD(fmt.Sprintf("iam.roles[%d].max_session", i), &c.IAM.Roles[i].MaxSession, time.Hour)
	}
	if c.Objects.MaxObjectSize == 0 { // written as 0 too: documented as the default before
		c.Objects.MaxObjectSize = 5 << 30
	}
	for i := range c.Gateway.Authorizers {
		a := &c.Gateway.Authorizers[i]
		path := fmt.Sprintf("gateway.authorizers[%d].", i)
		if len(a.TokenUse) == 0 && !written[path+"token_use"] {
			a.TokenUse = []string{"access"}
		}
		defD(path+"skew", &a.Skew, 30*time.Second)
	}
	for i := range c.Gateway.Routes {
		r := &c.Gateway.Routes[i]
		path := fmt.Sprintf("gateway.routes[%d].", i)
		def(&r.Propagate, "forward")
		defD(path+"timeout", &r.Timeout, 30*time.Second)
		if r.MaxBody == 0 { // written as 0 too: documented as the default before
			r.MaxBody = 10 << 20
		}
	}
	for i := range c.Gateway.Functions {
		f := &c.Gateway.Functions[i]
		path := fmt.Sprintf("gateway.functions[%d].", i)
		defD(path+"timeout", &f.Timeout, 3*time.Second)
		defI(path+"concurrency", &f.Concurrency, 1)
		if len(f.Command) > 0 && !filepath.IsAbs(f.Command[0]) && strings.ContainsRune(f.Command[0], '/') {
			f.Command[0] = filepath.Join(c.Dir, f.Command[0])
		}
	}
}

type validator struct {
	d *decoder
	// warnings are what Parse returns in Config.Warnings.
	warnings []FieldError
}

func (v *validator) errorf(path, format string, args ...any) {
	v.d.errs = append(v.d.errs, FieldError{Path: path, Line: v.line(path), Msg: fmt.Sprintf(format, args...)})
}

// warnf records a likely mistake that writ still runs with.
func (v *validator) warnf(path, format string, args ...any) {
	v.warnings = append(v.warnings, FieldError{Path: path, Line: v.line(path), Msg: fmt.Sprintf(format, args...)})
}

// line finds the line of path or of its nearest recorded ancestor.
func (v *validator) line(path string) int {
	for p := path; p != ""; {
		if l, ok := v.d.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// broadProxies is the warning for a trusted_proxies entry e, parsed as p,
// that clientip.Broad finds too broad.
func broadProxies(e string, p netip.Prefix) string {
	is4 := p.Addr().Is4()
	var what string
	switch {
	case p.Bits() == 0 && is4:
		what = "every IPv4 address"
	case p.Bits() == 0:
		what = "every IPv6 address"
	case is4:
		what = "more than a /8 of IPv4 addresses"
	default:
		what = "more than a /16 of IPv6 addresses"
	}
	return fmt.Sprintf("%q trusts %s as proxies, so any client there can set its own address with X-Forwarded-For or Forwarded: list only the proxies' addresses or networks", e, what)
}

// mail checks the mail settings, which are otherwise first used when a
// message is sent, long after the request that queued it answered.
func (v *validator) mail(m Mail) {
	v.oneOf("mail.tls", m.TLS, "starttls", "required", "implicit")
	if m.SMTP != "" {
		if host, port, err := net.SplitHostPort(m.SMTP); err != nil || host == "" || port == "" {
			v.errorf("mail.smtp", "not a host:port address: %q", m.SMTP)
		}
	}
	if _, err := mail.ParseAddress(m.From); err != nil {
		v.errorf("mail.from", "not a mail address: %q", m.From)
	}
}

func (v *validator) oneOf(path, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.errorf(path, "%q is not one of %s", val, strings.Join(allowed, ", "))
}

func (v *validator) required(path, val string) bool {
	if val == "" {
		v.errorf(path, "required")
		return false
	}
	return true
}

// listen checks a host:port listen address: the port 1 to 65535, or 0
// for any free port.
func (v *validator) listen(path, addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		v.errorf(path, "not a host:port listen address: %q", addr)
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.errorf(path, "port %q is not 1 to 65535 (or 0 for any free port)", port)
		return false
	}
	return true
}

func (v *validator) absURL(path, s string) {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || ((u.Scheme == "http" || u.Scheme == "https") && u.Host == "") {
		v.errorf(path, "not an absolute URL: %q", s)
		return
	}
	if u.Fragment != "" {
		v.errorf(path, "URL must not have a fragment: %q", s)
	}
}

// positive refuses a duration written as 0, which would mean nothing
// useful: left out, the field gets its default, def.
func (v *validator) positive(path string, d time.Duration, def string) {
	if d <= 0 {
		v.errorf(path, "must be more than 0 (leave it out for the default, %s)", def)
	}
}

func (v *validator) lifetime(path string, d, min, max time.Duration) {
	if d < min || d > max {
		v.errorf(path, "%v is out of range (%v to %v)", d, min, max)
	}
}

var (
	poolIDRE     = regexp.MustCompile(`^[a-z]{2}-[a-z]+-\d_[0-9A-Za-z]+$`)
	identityIDRE = regexp.MustCompile(`^[a-z]{2}-[a-z]+-\d:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	accountRE    = regexp.MustCompile(`^\d{12}$`)
	bucketRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	accessKeyRE  = regexp.MustCompile(`^AKIA[A-Z0-9]{12,124}$`)
	nameRE       = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
)

var validFlows = []string{"authorization_code", "refresh_token", "user_password", "client_credentials", "token_exchange", "admin_user_password"}

var reservedScopes = map[string]bool{"openid": true, "email": true, "phone": true, "profile": true, "aws.cognito.signin.user.admin": true}

// validMasterKey reports whether s decodes (base64: standard or URL
// alphabet, padded or not) to 32 bytes, as keys.ParseMasterKey wants.
func validMasterKey(s string) bool {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return len(b) == 32
		}
	}
	return false
}

func (c *Config) validate(v *validator) {
	if !accountRE.MatchString(c.Account) {
		v.errorf("account", "must be 12 digits, got %q", c.Account)
	}
	if c.Store != "" && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") {
		v.errorf("store", "must be a postgres:// URL")
	}
	for i, k := range append([]Secret{c.MasterKey}, c.PreviousMasterKeys...) {
		path := "master_key"
		if i > 0 {
			path = fmt.Sprintf("previous_master_keys[%d]", i-1)
		}
		if k.Reveal() != "" && !validMasterKey(k.Reveal()) {
			v.errorf(path, "must be 32 bytes in base64") // never the value
		}
	}
	if len(c.PreviousMasterKeys) > 0 && c.MasterKey.Reveal() == "" {
		v.errorf("previous_master_keys", "needs master_key: rotating keeps the old key here and names the new one there")
	}
	v.mail(c.Mail)
	v.oneOf("log.format", c.Log.Format, "text", "json")
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	if c.Tracing.Endpoint != "" {
		if u, err := url.Parse(c.Tracing.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errorf("tracing.endpoint", "not an http(s) URL: %q", c.Tracing.Endpoint)
		}
	}
	if r := *c.Tracing.SampleRatio; r < 0 || r > 1 {
		v.errorf("tracing.sample_ratio", "must be 0 to 1, got %v", r)
	}
	// Zero would publish a rotated key and sign with it at once, before
	// verifiers holding the old JWKS can know it.
	v.positive("keys.activation_delay", c.Keys.ActivationDelay, "10m")
	if c.StorePool.MaxOpen < 0 {
		v.errorf("store_pool.max_open", "must not be negative (0 means the default, 10)")
	}
	if c.StorePool.MaxIdle < 0 {
		v.errorf("store_pool.max_idle", "must not be negative (0 means the default, 5)")
	}
	if c.StorePool.MaxLifetime < 0 {
		v.errorf("store_pool.max_lifetime", "must not be negative (0 means the default, 30m)")
	}
	listeners := []struct {
		name string
		l    *Listener
	}{{"idp", c.Serve.IDP}, {"identity", c.Serve.Identity}, {"objects", c.Serve.Objects}, {"gateway", c.Serve.Gateway}, {"ops", c.Serve.Ops}}
	// Two components may name the same address: each runs where
	// `writ serve --only` puts it (one pod per component, all on :8080);
	// run together, the second fails to bind and says so.
	for _, sl := range listeners {
		l := sl.l
		if l == nil {
			continue
		}
		p := "serve." + sl.name
		if v.required(p+".listen", l.Listen) {
			v.listen(p+".listen", l.Listen)
		}
		if l.PublicURL != "" {
			v.absURL(p+".public_url", l.PublicURL)
		}
		for i, e := range l.TrustedProxies {
			pp := fmt.Sprintf("%s.trusted_proxies[%d]", p, i)
			switch pre, err := clientip.ParsePrefix(e); {
			case err != nil:
				v.errorf(pp, "%v", err)
			case clientip.Broad(pre):
				// Accepted, as a test setup may mean it, but said: it
				// hands every client the choice of its own address.
				v.warnf(pp, "%s", broadProxies(e, pre))
			}
		}
	}

	roles := map[string]bool{}
	for i, r := range c.IAM.Roles {
		p := fmt.Sprintf("iam.roles[%d]", i)
		if v.required(p+".name", r.Name) {
			if roles[r.Name] {
				v.errorf(p+".name", "duplicate role %q", r.Name)
			}
			roles[r.Name] = true
			if !nameRE.MatchString(r.Name) {
				v.errorf(p+".name", "invalid role name %q", r.Name)
			}
		}
		v.lifetime(p+".max_session", r.MaxSession, 15*time.Minute, 12*time.Hour)
		if r.Trust.IsZero() {
			v.errorf(p+".trust", "required")
		} else {
			v.policy(p+".trust", r.Trust, iam.Trust)
		}
		if !r.Policy.IsZero() {
			v.policy(p+".policy", r.Policy, iam.Identity)
		}
		if !r.Boundary.IsZero() {
			v.policy(p+".boundary", r.Boundary, iam.Identity)
		}
	}
	keys, users := map[string]bool{}, map[string]bool{}
	for i, u := range c.IAM.Users {
		p := fmt.Sprintf("iam.users[%d]", i)
		if v.required(p+".name", u.Name) && users[u.Name] {
			v.errorf(p+".name", "duplicate user %q", u.Name)
		}
		users[u.Name] = true
		if !accessKeyRE.MatchString(u.AccessKeyID) {
			v.errorf(p+".access_key_id", "must start with AKIA and be 16 to 128 upper-case letters and digits")
		} else if keys[u.AccessKeyID] {
			v.errorf(p+".access_key_id", "duplicate access key")
		}
		keys[u.AccessKeyID] = true
		if u.SecretAccessKey.IsZero() {
			v.errorf(p+".secret_access_key", "required")
		}
		if !u.Policy.IsZero() {
			v.policy(p+".policy", u.Policy, iam.Identity)
		}
	}
	for i, o := range c.IAM.OIDCProviders {
		v.absURL(fmt.Sprintf("iam.oidc_providers[%d].url", i), o.URL)
	}

	pools := map[string]*UserPool{}
	clientIDs := map[string]bool{}
	for i := range c.UserPools {
		up := &c.UserPools[i]
		p := fmt.Sprintf("user_pools[%d]", i)
		if v.required(p+".id", up.ID) {
			if !poolIDRE.MatchString(up.ID) {
				v.errorf(p+".id", "must look like <region>_<letters and digits>, got %q", up.ID)
			}
			if pools[up.ID] != nil {
				v.errorf(p+".id", "duplicate pool id %q", up.ID)
			}
			pools[up.ID] = up
		}
		v.oneOf(p+".signing_alg", up.SigningAlg, "ES256", "EdDSA", "RS256")
		v.oneOf(p+".mfa", up.MFA, "off", "optional", "required")
		if up.PasswordPolicy.MinLength < 6 || up.PasswordPolicy.MinLength > 99 {
			v.errorf(p+".password_policy.min_length", "must be 6 to 99")
		}
		if up.Lockout.MaxFailures < 1 {
			v.errorf(p+".lockout.max_failures", "must be at least 1 (leave it out for the default, 5)")
		}
		v.positive(p+".lockout.window", up.Lockout.Window, "15m")
		v.lifetime(p+".tokens.id", up.Tokens.ID, 5*time.Minute, 24*time.Hour)
		v.lifetime(p+".tokens.access", up.Tokens.Access, 5*time.Minute, 24*time.Hour)
		v.lifetime(p+".tokens.refresh", up.Tokens.Refresh, time.Hour, 87600*time.Hour)
		v.lifetime(p+".tokens.session", up.Tokens.Session, time.Minute, 15*time.Minute)
		// 0 is no grace: a rotated refresh token presented again is reuse.
		v.lifetime(p+".tokens.refresh_grace", up.Tokens.RefreshGrace, 0, 5*time.Minute)
		v.positive(p+".tokens.code", up.Tokens.Code, "5m")
		if up.MaxActorChain < 1 || up.MaxActorChain > 20 {
			v.errorf(p+".max_actor_chain", "must be 1 to 20")
		}
		for j, a := range up.UserWritableAttributes {
			if n := strings.TrimPrefix(a, "custom:"); n == a || n == "" || len(n) > 32 {
				v.errorf(fmt.Sprintf("%s.user_writable_attributes[%d]", p, j), "must be a custom attribute, custom:<1 to 32 characters>, got %q", a)
			}
		}
		scopes := map[string]bool{}
		for j, rs := range up.ResourceServers {
			rp := fmt.Sprintf("%s.resource_servers[%d]", p, j)
			if v.required(rp+".identifier", rs.Identifier) {
				for _, s := range rs.Scopes {
					scopes[rs.Identifier+"/"+s] = true
				}
			}
		}
		groups := map[string]bool{}
		for j, g := range up.Groups {
			gp := fmt.Sprintf("%s.groups[%d]", p, j)
			if v.required(gp+".name", g.Name) && groups[g.Name] {
				v.errorf(gp+".name", "duplicate group %q", g.Name)
			}
			groups[g.Name] = true
			if g.Role != "" && !roles[g.Role] {
				v.errorf(gp+".role", "no role %q under iam.roles", g.Role)
			}
			if g.Precedence != nil && (*g.Precedence < 0 || *g.Precedence > math.MaxInt32) {
				v.errorf(gp+".precedence", "must be between 0 and 2147483647")
			}
		}
		for j, cl := range up.Clients {
			cp := fmt.Sprintf("%s.clients[%d]", p, j)
			if v.required(cp+".client_id", cl.ClientID) {
				if clientIDs[cl.ClientID] {
					v.errorf(cp+".client_id", "duplicate client id %q", cl.ClientID)
				}
				clientIDs[cl.ClientID] = true
			}
			for k, f := range cl.Flows {
				v.oneOf(fmt.Sprintf("%s.flows[%d]", cp, k), f, validFlows...)
			}
			if cl.Public && !cl.Secret.IsZero() {
				v.errorf(cp+".secret", "a public client has no secret")
			}
			if !cl.Public && cl.Secret.IsZero() && cl.JWKS == "" {
				v.errorf(cp+".secret", "required for a confidential client (or set public: true, or jwks for private_key_jwt)")
			}
			for k, u := range cl.RedirectURIs {
				v.absURL(fmt.Sprintf("%s.redirect_uris[%d]", cp, k), u)
			}
			for k, u := range cl.LogoutURIs {
				v.absURL(fmt.Sprintf("%s.logout_uris[%d]", cp, k), u)
			}
			for k, s := range cl.Scopes {
				if !reservedScopes[s] && !scopes[s] {
					v.errorf(fmt.Sprintf("%s.scopes[%d]", cp, k), "unknown scope %q (not a standard scope nor <resource server>/<scope> of this pool)", s)
				}
			}
			if hasFlow(cl.Flows, "authorization_code") && len(cl.RedirectURIs) == 0 {
				v.errorf(cp+".redirect_uris", "required for the authorization_code flow")
			}
		}
		names := map[string]bool{}
		for j, u := range up.Users {
			upath := fmt.Sprintf("%s.users[%d]", p, j)
			if v.required(upath+".username", u.Username) && names[u.Username] {
				v.errorf(upath+".username", "duplicate username %q", u.Username)
			}
			if n := utf8.RuneCountInString(u.Username); !utf8.ValidString(u.Username) || n > 128 {
				// No one could sign in with it: the API refuses such a name.
				v.errorf(upath+".username", "more than 128 characters (%d), which no user can sign in with", n)
			}
			names[u.Username] = true
			if !u.Password.IsZero() {
				if rule := up.PasswordPolicy.Violation(u.Password.Reveal()); rule != "" {
					v.errorf(upath+".password", "breaks the pool's password_policy: %s", rule) // never the value
				}
			}
			for k, g := range u.Groups {
				if !groups[g] {
					v.errorf(fmt.Sprintf("%s.groups[%d]", upath, k), "no group %q in this pool", g)
				}
			}
			if u.Email != "" && !userattr.ValidEmail(u.Email) {
				v.errorf(upath+".email", "not an email address (local@domain, no display name or spaces, at most %d characters)", userattr.MaxEmail)
			}
			// The values the API takes, that the pool's users and clients
			// read as the API would have written them.
			for _, name := range slices.Sorted(maps.Keys(u.Attributes)) {
				value, apath := u.Attributes[name], upath+".attributes."+name
				switch {
				case name == "sub" || name == "email" || name == "email_verified":
					v.errorf(apath, "set with its own key, not under attributes")
				case !userattr.Standard(name) && !userattr.Custom(name) && !userattr.Verified(name):
					v.errorf(apath, "no such attribute: a standard one (OpenID Connect's), phone_number_verified, or custom:NAME")
				case len(name) > userattr.MaxName:
					v.errorf(apath, "name longer than %d characters", userattr.MaxName)
				case utf8.RuneCountInString(value) > userattr.MaxValue:
					v.errorf(apath, "longer than %d characters", userattr.MaxValue)
				default:
					if msg := userattr.CheckValue(name, value); msg != "" {
						v.errorf(apath, "%s", msg)
					}
				}
			}
		}
	}
	for i := range c.UserPools {
		// Clients that sign users in through OpenID Connect: an exchanged
		// token's aud naming one of them would pass that client's ID-token
		// check in a library that reads neither typ nor token_use.
		signsIn := map[string]bool{}
		for _, cl := range c.UserPools[i].Clients {
			signsIn[cl.ClientID] = hasFlow(cl.Flows, "authorization_code")
		}
		for j, cl := range c.UserPools[i].Clients {
			for k, a := range cl.ExchangeAudiences {
				path := fmt.Sprintf("user_pools[%d].clients[%d].exchange_audiences[%d]", i, j, k)
				if a == "" {
					v.errorf(path, "empty audience")
				}
				if signsIn[a] {
					v.warnf(path, "%q is a client that signs users in (authorization_code): a token exchanged for it has it as aud, as its ID tokens do, and an OpenID Connect library that reads neither typ nor token_use would take one for the other; exchange for a service's own client", a)
				}
			}
			for k, comp := range cl.AuditComponents {
				if err := auditevent.CheckComponent(comp); err != nil {
					v.errorf(fmt.Sprintf("user_pools[%d].clients[%d].audit_components[%d]", i, j, k), "%s", strings.TrimPrefix(err.Error(), "component: "))
				}
			}
		}
	}

	ipIDs := map[string]bool{}
	for i, ip := range c.IdentityPools {
		p := fmt.Sprintf("identity_pools[%d]", i)
		if v.required(p+".id", ip.ID) {
			if !identityIDRE.MatchString(ip.ID) {
				v.errorf(p+".id", "must look like <region>:<uuid>, got %q", ip.ID)
			}
			if ipIDs[ip.ID] {
				v.errorf(p+".id", "duplicate identity pool id")
			}
			ipIDs[ip.ID] = true
		}
		for _, rr := range []struct{ path, role string }{{p + ".authenticated_role", ip.AuthenticatedRole}, {p + ".unauthenticated_role", ip.UnauthenticatedRole}} {
			if rr.role != "" && !roles[rr.role] {
				v.errorf(rr.path, "no role %q under iam.roles", rr.role)
			}
		}
		if ip.AllowUnauthenticated && ip.UnauthenticatedRole == "" {
			v.errorf(p+".unauthenticated_role", "required when allow_unauthenticated is true")
		}
		for j, pr := range ip.Providers {
			pp := fmt.Sprintf("%s.providers[%d]", p, j)
			up := pools[pr.UserPool]
			if up == nil {
				v.errorf(pp+".user_pool", "no user pool %q", pr.UserPool)
			} else {
				for k, id := range pr.ClientIDs {
					if _, ok := up.Client(id); !ok {
						v.errorf(fmt.Sprintf("%s.client_ids[%d]", pp, k), "no client %q in pool %s", id, up.ID)
					}
				}
			}
			if pr.RoleResolution != "" {
				v.oneOf(pp+".role_resolution", pr.RoleResolution, "token", "rules")
			}
			v.oneOf(pp+".ambiguous", pr.Ambiguous, "authenticated_role", "deny")
			if pr.RoleResolution == "rules" && len(pr.Rules) == 0 {
				v.errorf(pp+".rules", "required when role_resolution is rules")
			}
			for k, r := range pr.Rules {
				rp := fmt.Sprintf("%s.rules[%d]", pp, k)
				v.required(rp+".claim", r.Claim)
				v.oneOf(rp+".match", r.Match, "Equals", "Contains", "StartsWith", "NotEqual")
				if !roles[r.Role] {
					v.errorf(rp+".role", "no role %q under iam.roles", r.Role)
				}
			}
		}
	}

	if c.Objects.MaxObjectSize < 0 {
		v.errorf("objects.max_object_size", "must not be negative (0 or none means the default, 5 GiB)")
	}
	for i, b := range c.Objects.Buckets {
		if !bucketRE.MatchString(b) || strings.Contains(b, "..") {
			v.errorf(fmt.Sprintf("objects.buckets[%d]", i), "invalid bucket name %q", b)
		}
	}
	bps := make([]string, 0, len(c.Objects.BucketPolicies))
	for b := range c.Objects.BucketPolicies {
		bps = append(bps, b)
	}
	sort.Strings(bps)
	for _, b := range bps {
		p := "objects.bucket_policies." + b
		if !hasFlow(c.Objects.Buckets, b) {
			v.errorf(p, "no bucket %q under objects.buckets", b)
		}
		validateBucketPolicy(v, p, b, c.Objects.BucketPolicies[b])
	}

	c.validateGateway(v, pools)
}

// policy parses an IAM policy document of kind as writ serve will, and
// reports the first problem with its JSON path under the YAML path.
func (v *validator) policy(path string, doc PolicyDoc, kind iam.Kind) {
	if _, err := iam.ParseKind(doc.Bytes(), kind); err != nil {
		v.errorf(path, "%s", strings.TrimPrefix(err.Error(), "iam: "))
	}
}

// validateBucketPolicy parses a bucket policy as IAM will (Principal
// required) and checks that every Resource lies in its bucket.
func validateBucketPolicy(v *validator, path, bucket string, doc PolicyDoc) {
	pol, err := iam.ParseKind(doc.Bytes(), iam.Resource)
	if err != nil {
		v.errorf(path, "%s", strings.TrimPrefix(err.Error(), "iam: "))
		return
	}
	arn := "arn:aws:s3:::" + bucket
	for _, st := range pol.Statements {
		rs, not := st.Resources()
		key := "Resource"
		if not {
			key = "NotResource"
		}
		for i, r := range rs {
			if r != arn && !strings.HasPrefix(r, arn+"/") {
				v.errorf(path, "Statement[%d].%s[%d]: %q is not in bucket %s (%s or %s/…)", st.Index, key, i, r, bucket, arn, arn)
			}
		}
	}
}

func hasFlow(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *Config) validateGateway(v *validator, pools map[string]*UserPool) {
	g := &c.Gateway
	if g.Client.ClientID != "" {
		up := pools[g.Client.UserPool]
		if up == nil {
			v.errorf("gateway.client.user_pool", "no user pool %q", g.Client.UserPool)
		} else if cl, ok := up.Client(g.Client.ClientID); !ok {
			v.errorf("gateway.client.client_id", "no client %q in pool %s", g.Client.ClientID, up.ID)
		} else if !hasFlow(cl.Flows, "token_exchange") {
			v.errorf("gateway.client.client_id", "client %q does not have the token_exchange flow", g.Client.ClientID)
		}
		if g.Client.Secret.IsZero() {
			v.errorf("gateway.client.secret", "required")
		}
	}
	auths := map[string]bool{}
	for i, a := range g.Authorizers {
		p := fmt.Sprintf("gateway.authorizers[%d]", i)
		if v.required(p+".name", a.Name) && auths[a.Name] {
			v.errorf(p+".name", "duplicate authorizer %q", a.Name)
		}
		auths[a.Name] = true
		if v.required(p+".issuer", a.Issuer) {
			v.absURL(p+".issuer", a.Issuer)
		}
		if len(a.TokenUse) == 0 {
			v.errorf(p+".token_use", "must list access, id or both (leave it out for the default, [access])")
		}
		for j, u := range a.TokenUse {
			v.oneOf(fmt.Sprintf("%s.token_use[%d]", p, j), u, "access", "id")
		}
	}
	funcs := map[string]bool{}
	for i, f := range g.Functions {
		p := fmt.Sprintf("gateway.functions[%d]", i)
		if v.required(p+".name", f.Name) && funcs[f.Name] {
			v.errorf(p+".name", "duplicate function %q", f.Name)
		}
		funcs[f.Name] = true
		if len(f.Command) == 0 {
			v.errorf(p+".command", "required")
		}
		v.positive(p+".timeout", f.Timeout, "3s")
		if f.Concurrency < 1 || f.Concurrency > 64 {
			v.errorf(p+".concurrency", "must be 1 to 64")
		}
	}
	shapes := map[string]string{}
	for i, r := range g.Routes {
		p := fmt.Sprintf("gateway.routes[%d]", i)
		method, shape, err := ParseRoute(r.Route)
		if err != nil {
			v.errorf(p+".route", "%v", err)
		} else {
			key := method + " " + shape
			if prev, dup := shapes[key]; dup {
				v.errorf(p+".route", "conflicts with %s (same method and path shape)", prev)
			}
			shapes[key] = fmt.Sprintf("%q", r.Route)
		}
		if r.Authorizer != "" && !auths[r.Authorizer] {
			v.errorf(p+".authorizer", "no authorizer %q", r.Authorizer)
		}
		if (r.Upstream == "") == (r.Function == "") {
			v.errorf(p, "needs exactly one of upstream and function")
		}
		if r.Upstream != "" {
			v.absURL(p+".upstream", r.Upstream)
		}
		if r.Function != "" && !funcs[r.Function] {
			v.errorf(p+".function", "no function %q", r.Function)
		}
		v.oneOf(p+".propagate", r.Propagate, "forward", "exchange")
		if r.Propagate == "exchange" {
			if r.Audience == "" {
				v.errorf(p+".audience", "required with propagate: exchange")
			}
			if g.Client.ClientID == "" {
				v.errorf("gateway.client", "required by routes with propagate: exchange")
			}
		}
		v.positive(p+".timeout", r.Timeout, "30s")
		if r.MaxBody < 0 {
			v.errorf(p+".max_body", "must not be negative (0 or none means the default, 10 MiB)")
		}
		if r.RateLimit < 0 {
			v.errorf(p+".rate_limit", "must not be negative (requests per second; 0 means unlimited)")
		}
		for j, s := range r.Scopes {
			if strings.TrimSpace(s) == "" {
				v.errorf(fmt.Sprintf("%s.scopes[%d]", p, j), "empty scope")
			}
		}
	}
}

var routeMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"}

// ParseRoute parses "METHOD /path/{param}/{proxy+}" and returns the method
// and the path shape with parameter names erased ("/path/{}/{+}").
func ParseRoute(route string) (method, shape string, err error) {
	m, path, ok := strings.Cut(strings.TrimSpace(route), " ")
	if !ok || !hasFlow(routeMethods, m) {
		return "", "", fmt.Errorf("route %q must be METHOD /path with METHOD one of %s", route, strings.Join(routeMethods, ", "))
	}
	path = strings.TrimSpace(path)
	if !strings.HasPrefix(path, "/") {
		return "", "", fmt.Errorf("route %q: path must start with /", route)
	}
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var b strings.Builder
	names := map[string]bool{}
	for i, s := range segs {
		b.WriteByte('/')
		switch {
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "+}"):
			if i != len(segs)-1 {
				return "", "", fmt.Errorf("route %q: {%s} must be the last segment", route, strings.Trim(s, "{}"))
			}
			b.WriteString("{+}")
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			name := s[1 : len(s)-1]
			if name == "" || names[name] {
				return "", "", fmt.Errorf("route %q: bad or repeated parameter %q", route, s)
			}
			names[name] = true
			b.WriteString("{}")
		case strings.ContainsAny(s, "{}"):
			return "", "", fmt.Errorf("route %q: bad segment %q", route, s)
		case s == "" && i != len(segs)-1:
			return "", "", fmt.Errorf("route %q: empty segment", route)
		default:
			b.WriteString(s)
		}
	}
	return m, b.String(), nil
}
