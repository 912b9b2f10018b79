package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/auditapi"
	"github.com/writ-id/writ/internal/clientip"
	"github.com/writ-id/writ/internal/cognito"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/gateway"
	"github.com/writ-id/writ/internal/identity"
	"github.com/writ-id/writ/internal/keys"
	"github.com/writ-id/writ/internal/mail"
	"github.com/writ-id/writ/internal/metrics"
	"github.com/writ-id/writ/internal/objects"
	"github.com/writ-id/writ/internal/oidc"
	"github.com/writ-id/writ/internal/sigv4"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/store/postgres"
	"github.com/writ-id/writ/internal/store/sqlite"
	"github.com/writ-id/writ/internal/sts"
	"github.com/writ-id/writ/internal/token"
	"github.com/writ-id/writ/internal/tracing"
	"github.com/writ-id/writ/internal/tracing/export"
	"github.com/writ-id/writ/internal/userpool"
)

// Components, named as under `serve` in the configuration.
const (
	IDP      = "idp"
	Identity = "identity"
	Objects  = "objects"
	Gateway  = "gateway"
	Ops      = "ops"
)

// Options tune New.
type Options struct {
	// Only runs just these components (empty: all listed under serve).
	Only []string
	Log  *slog.Logger
	// Argon2 overrides password hashing cost (tests).
	Argon2 userpool.Argon2Params
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// OpenStore opens the configured store: PostgreSQL when cfg.Store is set,
// else SQLite at data_dir/writ.db. log hears of a migration that waits
// (for another replica's, or for older transactions); nil for none.
func OpenStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, error) {
	if cfg.Store != "" {
		return postgres.Open(ctx, cfg.Store, postgres.Options{MaxOpen: cfg.StorePool.MaxOpen,
			MaxIdle: cfg.StorePool.MaxIdle, MaxLifetime: cfg.StorePool.MaxLifetime, Log: log})
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("app: data_dir: %w", err)
	}
	return sqlite.Open(filepath.Join(cfg.DataDir, "writ.db"))
}

// RequireStore refuses a SQLite store that does not exist yet: commands
// that inspect or manage a deployment (audit, keys, outbox) must not create
// an empty one, with a master key, at a mistyped data_dir and report on it
// as if it were the deployment.
func RequireStore(cfg *config.Config) error {
	if cfg.Store != "" {
		return nil
	}
	path := filepath.Join(cfg.DataDir, "writ.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("app: no store at %s (writ serve creates it): is data_dir right?", path)
	}
	return nil
}

// Core is what the commands share: store, keys, audit and user pools.
type Core struct {
	Cfg    *config.Config
	Store  store.Store
	Master *keys.MasterKey
	Keys   *keys.Manager
	Audit  *audit.Writer
	Log    *slog.Logger
}

// OpenCore opens the store and keys of cfg.
func OpenCore(ctx context.Context, cfg *config.Config, log *slog.Logger, now func() time.Time) (*Core, error) {
	if now == nil {
		now = time.Now
	}
	st, err := OpenStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	master, err := keys.LoadMasterKeys(cfg.DataDir, cfg.MasterKey.Reveal(), cfg.PreviousMasterKeyValues())
	if err != nil {
		st.Close()
		return nil, err
	}
	km := keys.NewManager(st, master, keys.Options{ActivationDelay: cfg.Keys.ActivationDelay, Now: now})
	return &Core{Cfg: cfg, Store: st, Master: master, Keys: km, Audit: audit.NewWriter(st, AuditSigner(master), log), Log: log}, nil
}

// Reseal seals every value sealed at rest — the signing keys of the user
// pools and of the identity pools' OpenID tokens, users' TOTP secrets —
// again under the current master key, so that after a rotation the
// previous key can leave previous_master_keys once the short-lived values
// it sealed (session tokens, hours) have expired. It returns how many
// signing keys and users it changed.
func Reseal(ctx context.Context, core *Core) (signingKeys, users int, err error) {
	for _, pool := range append(poolIDs(core.Cfg), identity.KeyPool) {
		n, err := core.Keys.Reseal(ctx, pool)
		if err != nil {
			return signingKeys, users, err
		}
		signingKeys += n
	}
	for _, pool := range poolIDs(core.Cfg) {
		n, err := userpool.ResealTOTP(ctx, core.Store, core.Master, pool)
		if err != nil {
			return signingKeys, users, err
		}
		users += n
	}
	return signingKeys, users, nil
}

func poolIDs(cfg *config.Config) []string {
	var ids []string
	for _, p := range cfg.UserPools {
		ids = append(ids, p.ID)
	}
	return ids
}

// AuditSigner returns the checkpoint signer derived from the master key.
func AuditSigner(master *keys.MasterKey) *audit.Signer {
	return audit.NewSigner(master.DeriveAll("audit-checkpoint", 32)...)
}

// Close flushes audit events and closes the store.
func (c *Core) Close(ctx context.Context) error {
	aerr := c.Audit.Close(ctx)
	return errors.Join(aerr, c.Store.Close())
}

// MaxTokenLifetime is the longest ID or access token lifetime of a pool.
func MaxTokenLifetime(p *config.UserPool) time.Duration {
	if p.Tokens.ID > p.Tokens.Access {
		return p.Tokens.ID
	}
	return p.Tokens.Access
}

// App is a running writ.
type App struct {
	Core  *Core
	Pools *userpool.Service

	opts      Options
	log       *slog.Logger
	listeners map[string]net.Listener
	trusted   map[string]clientip.Trusted // each listener's trusted_proxies
	servers   map[string]*http.Server
	urls      map[string]string
	gateway   *gateway.Gateway
	identity  *identity.Handler
	objects   *objects.Handler
	ingest    *auditapi.Handler
	// mail delivers queued mail over SMTP; nil without mail.smtp, when
	// mail stays in the outbox.
	mail *mail.Sender
	// Ingested is the audit writer of the events services send to
	// POST /audit/events on the identity listener: a stream of its own.
	Ingested *audit.Writer
	// tp is the tracer provider; nil when tracing is off.
	tp *sdktrace.TracerProvider
	// STS issues and opens temporary credentials.
	STS     *sts.Service
	metrics *metrics.Metrics
	stop    context.CancelFunc
	bg      sync.WaitGroup
	ready   bool
	mu      sync.Mutex
}

// New opens everything cfg describes and binds the listeners, but serves
// nothing until Serve.
func New(ctx context.Context, cfg *config.Config, opts Options) (*App, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	a := &App{opts: opts, log: log, listeners: map[string]net.Listener{}, trusted: map[string]clientip.Trusted{}, servers: map[string]*http.Server{}, urls: map[string]string{}}
	want := func(name string) bool {
		if len(opts.Only) == 0 {
			return true
		}
		for _, o := range opts.Only {
			if o == name {
				return true
			}
		}
		return false
	}
	comps := []struct {
		name string
		l    *config.Listener
	}{{IDP, cfg.Serve.IDP}, {Identity, cfg.Serve.Identity}, {Objects, cfg.Serve.Objects}, {Gateway, cfg.Serve.Gateway}, {Ops, cfg.Serve.Ops}}
	for _, c := range comps {
		if c.l == nil || !want(c.name) {
			continue
		}
		if !implemented[c.name] {
			log.Warn("component not available in this build yet; not started", "component", c.name)
			continue
		}
		trusted, err := clientip.New(c.l.TrustedProxies)
		if err != nil {
			a.closeListeners()
			return nil, fmt.Errorf("app: %s: %w", c.name, err)
		}
		a.trusted[c.name] = trusted
		ln, err := net.Listen("tcp", c.l.Listen)
		if err != nil {
			a.closeListeners()
			return nil, fmt.Errorf("app: %s: listen %s: %w", c.name, c.l.Listen, err)
		}
		a.listeners[c.name] = ln
		u := c.l.PublicURL
		if u == "" {
			u = "http://" + ln.Addr().String()
		}
		a.urls[c.name] = strings.TrimRight(u, "/")
	}
	core, err := OpenCore(ctx, cfg, log, opts.Now)
	if err != nil {
		a.closeListeners()
		return nil, err
	}
	a.Core = core
	a.metrics = metrics.New()
	recorder := a.metrics.Audit(core.Audit)
	if a.tp, err = export.New(cfg.Tracing); err != nil {
		a.Close(ctx)
		return nil, err
	}
	var tracer trace.Tracer
	if a.tp != nil {
		recorder = tracedRecorder{next: recorder}
		tracer = a.tp.Tracer(tracing.ScopeName)
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing: export failed", "err", err) }))
	}
	mailq := &userpool.MailQueue{}
	if cfg.Mail.SMTP == "" {
		warnUndeliveredMail(ctx, core.Store, log)
	} else {
		a.mail = mail.NewSender(core.Store, mail.SMTP{Addr: cfg.Mail.SMTP, From: cfg.Mail.From, Username: cfg.Mail.Username,
			Password: cfg.Mail.Password.Reveal(), TLS: cfg.Mail.TLS}, log, opts.Now)
		a.mail.Sent = a.metrics.MailDeliveries()
		mailq = &userpool.MailQueue{Deliver: true, Wake: a.mail.Wake}
	}
	idpURL := a.urls[IDP]
	if idpURL == "" && cfg.Serve.IDP != nil {
		idpURL = strings.TrimRight(cfg.Serve.IDP.PublicURL, "/")
	}
	a.Pools = userpool.New(cfg, idpURL, userpool.Deps{Store: core.Store, Keys: core.Keys, Master: core.Master,
		Mail: mailq, Audit: recorder, Log: log, Now: opts.Now, Argon2: opts.Argon2})
	for _, p := range a.Pools.Pools() {
		if err := p.Seed(ctx); err != nil {
			a.Close(ctx)
			return nil, err
		}
	}
	if a.listeners[IDP] != nil || a.listeners[Identity] != nil || a.listeners[Objects] != nil {
		if a.STS, err = sts.New(cfg, core.Master, opts.Now); err != nil {
			a.Close(ctx)
			return nil, err
		}
	}
	if a.listeners[Objects] != nil {
		if a.objects, err = objects.New(cfg, objects.Options{STS: a.STS, Audit: recorder, Log: log, Now: opts.Now}); err != nil {
			a.Close(ctx)
			return nil, err
		}
	}
	if a.listeners[Identity] != nil {
		a.identity, err = identity.New(ctx, cfg, identity.Options{IDPURL: idpURL, PublicURL: a.urls[Identity], Store: core.Store,
			Keys: core.Keys, STS: a.STS, Audit: recorder, Log: log, Now: opts.Now})
		if err != nil {
			a.Close(ctx)
			return nil, err
		}
		a.Ingested = audit.NewWriter(core.Store, AuditSigner(core.Master), log, audit.WithoutRecovery()) // core.Audit recovers
		a.ingest = auditapi.New(auditapi.Options{Pools: ingestPools(cfg, idpURL, core.Keys, opts.Now), Recorder: a.Ingested,
			Flush: a.Ingested.Flush, Log: log, Now: opts.Now})
	}
	if a.listeners[Gateway] != nil {
		gw, err := gateway.New(cfg, gateway.Options{IDPURL: idpURL, Audit: recorder, Log: log, Now: opts.Now, Tracer: tracer})
		if err != nil {
			a.Close(ctx)
			return nil, err
		}
		a.gateway = gw
	}
	a.registerGauges()
	for name, ln := range a.listeners {
		h := a.handler(name)
		a.servers[name] = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
			MaxHeaderBytes: 64 << 10, IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		_ = ln
	}
	return a, nil
}

var implemented = map[string]bool{IDP: true, Identity: true, Objects: true, Gateway: true, Ops: true}

// handler is a component's handler, with a server span per request when
// tracing is on, behind the listener's trusted proxies (forwardedFor: the
// span, and everything after it, sees the client's address).
func (a *App) handler(name string) http.Handler {
	var tp trace.TracerProvider
	if a.tp != nil && name != Ops { // scrapes and probes are not traced
		tp = a.tp
	}
	op := func(r *http.Request) string { return r.Method }
	switch name {
	case IDP:
		op = idpOperation
	case Identity:
		op = identityOperation
	case Gateway:
		op = a.gatewayRoute
	}
	return forwardedFor(a.trusted[name],
		tracing.Handler(tp, name, func(r *http.Request) string { return name + " " + op(r) }, a.componentHandler(name, op)))
}

func (a *App) gatewayRoute(r *http.Request) string {
	if k := a.gateway.RouteKey(r); k != "" {
		return k
	}
	return "unrouted"
}

func (a *App) componentHandler(name string, op func(*http.Request) string) http.Handler {
	switch name {
	case IDP:
		admin := &cognito.Admin{STS: a.STS, Region: a.Core.Cfg.Region, Account: a.Core.Cfg.Account,
			Verifier: &sigv4.Verifier{Service: "cognito-idp", Regions: []string{a.Core.Cfg.Region}, Now: a.opts.Now,
				Source: sts.Source{STS: a.STS, Users: a.Core.Cfg.IAM.Users}}}
		return a.metrics.Middleware(IDP, op, IDPHandler(a.Pools, admin, a.Core.Store, a.log, a.opts.Now))
	case Ops:
		return a.opsHandler()
	case Identity:
		return a.metrics.Middleware(Identity, op, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == auditapi.Path {
				a.ingest.ServeHTTP(w, r)
				return
			}
			a.identity.ServeHTTP(w, r)
		}))
	case Objects:
		return a.metrics.Middleware(Objects, op, a.objects)
	case Gateway:
		return a.metrics.Middleware(Gateway, op, a.gateway)
	}
	return http.NotFoundHandler()
}

// warnUndeliveredMail says when mail queued for SMTP waits while this
// process runs no sender (mail.smtp unset since, or on this replica only):
// nothing delivers it, and it goes, unsent, 7 days after it was queued.
func warnUndeliveredMail(ctx context.Context, st store.Outbox, log *slog.Logger) {
	ms, err := st.ListMail(ctx, 0)
	if err != nil {
		return // the store's trouble shows elsewhere
	}
	n := 0
	for _, m := range ms {
		if m.Deliver && m.DoneAt.IsZero() {
			n++
		}
	}
	if n > 0 {
		log.Warn("mail: messages wait for SMTP delivery, but mail.smtp is not set here: a replica with it sends them; unsent, they go 7 days after they were queued",
			"waiting", n)
	}
}

// idpOps are the Cognito IdP operations cognito.NewIDP dispatches, the only
// X-Amz-Target operations that become metric labels.
var idpOps = cognito.Operations()

// identityOps are the Cognito Identity operations the identity listener
// dispatches.
var identityOps = map[string]bool{"GetId": true, "GetCredentialsForIdentity": true, "GetOpenIdToken": true}

// targetOperation is the operation of an X-Amz-Target header for metrics:
// one of ops under prefix, else "unknown", so that a caller cannot create
// series at will.
func targetOperation(target, prefix string, ops map[string]bool) string {
	if p, op, ok := strings.Cut(target, "."); ok && p == prefix && ops[op] {
		return op
	}
	return "unknown"
}

// idpOperation names an idp request for metrics: the Cognito operation, or
// the OIDC endpoint under the pool's issuer.
func idpOperation(r *http.Request) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" && r.URL.Path == "/" {
		if r.Method != http.MethodPost {
			return "unknown"
		}
		return targetOperation(t, cognito.Prefix, idpOps)
	}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)
	if len(parts) == 2 {
		switch parts[1] {
		case ".well-known/openid-configuration", ".well-known/jwks.json", "oauth2/authorize", "oauth2/token", "oauth2/revoke",
			"oauth2/introspect", "oauth2/userInfo", "login", "login/totp", "login/enrol", "login/newpassword", "signup", "confirm",
			"forgot", "reset", "logout":
			return parts[1]
		}
	}
	return "other"
}

// identityOperation names an identity-listener request for metrics.
func identityOperation(r *http.Request) string {
	if r.URL.Path == auditapi.Path {
		return "audit.ingest"
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" && r.Method == http.MethodPost && r.URL.Path == "/" {
		return targetOperation(t, "AWSCognitoIdentityService", identityOps)
	}
	switch a := r.URL.Query().Get("Action"); a {
	case "AssumeRoleWithWebIdentity", "AssumeRole", "GetCallerIdentity":
		return "sts:" + a
	}
	if r.URL.Path == "/" {
		return "sts"
	}
	return "other"
}

// registerGauges exposes component state read at scrape time.
func (a *App) registerGauges() {
	for _, p := range a.Pools.Pools() {
		id := p.ID()
		a.metrics.GaugeFunc("writ_signing_key_age_seconds", "Age of the key a pool signs with now.", map[string]string{"pool": id}, func() float64 {
			k, err := a.Core.Keys.Signer(context.Background(), id)
			if err != nil {
				return -1
			}
			now := time.Now()
			if a.opts.Now != nil {
				now = a.opts.Now()
			}
			return now.Sub(k.ActiveAt).Seconds()
		})
	}
	verifiers := map[string]func() token.VerifyStats{}
	if a.identity != nil {
		verifiers["identity"] = a.identity.VerifyStats
	}
	if a.gateway != nil {
		verifiers["gateway"] = a.gateway.VerifyStats
	}
	for component, stats := range verifiers {
		for result := range stats().Results {
			a.metrics.CounterFunc("writ_token_verifications_total", "Token verifications, by component and result (valid, expired, bad_signature…).",
				map[string]string{"component": component, "result": result}, func() float64 { return float64(stats().Results[result]) })
		}
		a.metrics.CounterFunc("writ_verified_token_cache_hits_total", "Tokens served from the verified-token cache.",
			map[string]string{"component": component}, func() float64 { return float64(stats().CacheHits) })
		a.metrics.CounterFunc("writ_verified_token_cache_misses_total", "Tokens verified in full (not in the verified-token cache).",
			map[string]string{"component": component}, func() float64 { return float64(stats().CacheMisses) })
	}
	if a.gateway == nil {
		return
	}
	for issuer := range a.gateway.JWKSStats() {
		iss := issuer
		a.metrics.CounterFunc("writ_jwks_fetches_total", "JWKS fetches by the gateway's authorizers.", map[string]string{"issuer": iss},
			func() float64 { return float64(a.gateway.JWKSStats()[iss][0]) })
		a.metrics.CounterFunc("writ_jwks_fetch_failures_total", "Failed JWKS fetches by the gateway's authorizers.", map[string]string{"issuer": iss},
			func() float64 { return float64(a.gateway.JWKSStats()[iss][1]) })
	}
	a.metrics.GaugeFunc("writ_gateway_verified_tokens_cached", "Tokens in the gateway's verified-token cache.", nil,
		func() float64 { return float64(a.gateway.CachedTokens()) })
}

// IDPHandler serves the Cognito IdP API (POST /: without X-Amz-Target, its
// UnknownOperationException; OPTIONS /, a browser's CORS preflight, which
// names no target) and the pools' OIDC endpoints on one listener.
func IDPHandler(svc *userpool.Service, admin *cognito.Admin, st store.Store, log *slog.Logger, now func() time.Time) http.Handler {
	api := cognito.NewIDP(svc, admin, log)
	web := oidc.New(svc, st, log, now)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && (r.Header.Get("X-Amz-Target") != "" || r.Method == http.MethodPost || r.Method == http.MethodOptions) {
			api.ServeHTTP(w, r)
			return
		}
		web.ServeHTTP(w, r)
	})
}

// URL returns the public URL of a running component ("" if not running).
func (a *App) URL(component string) string { return a.urls[component] }

// Addr returns the listen address of a running component.
func (a *App) Addr(component string) string {
	if ln := a.listeners[component]; ln != nil {
		return ln.Addr().String()
	}
	return ""
}

// Serve serves every listener until ctx ends or Shutdown is called, then
// shuts down gracefully.
func (a *App) Serve(ctx context.Context) error {
	ctx, a.stop = context.WithCancel(ctx)
	errc := make(chan error, len(a.servers))
	for _, name := range slices.Sorted(maps.Keys(a.servers)) { // the log lists them in one order
		srv, ln := a.servers[name], a.listeners[name]
		a.log.Info("listening", "component", name, "addr", ln.Addr().String(), "url", a.urls[name])
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("app: %s: %w", name, err)
			}
		}()
	}
	a.mu.Lock()
	a.ready = true
	a.mu.Unlock()
	a.Core.Keys.Follow(ctx)
	a.bg.Add(1)
	go a.housekeeping(ctx)
	if a.mail != nil {
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			a.mail.Run(ctx)
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	return errors.Join(err, a.shutdown(sctx))
}

// Stop asks a serving App to shut down.
func (a *App) Stop() {
	if a.stop != nil {
		a.stop()
	}
}

func (a *App) shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.ready = false
	a.mu.Unlock()
	var errs []error
	var emu sync.Mutex
	var wg sync.WaitGroup
	for name, srv := range a.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("app: %s shutdown: %w", name, err))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	if a.stop != nil {
		a.stop()
	}
	a.bg.Wait()
	return errors.Join(append(errs, a.Close(ctx))...)
}

// Close releases the store and flushes audit events (for an App that was
// never served).
func (a *App) Close(ctx context.Context) error {
	a.closeListeners()
	if a.gateway != nil {
		a.gateway.Close()
	}
	if a.identity != nil {
		a.identity.Close()
	}
	var errs []error
	if a.tp != nil { // flushes the spans of the requests served
		if err := a.tp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("app: tracing: %w", err))
		}
		a.tp = nil
	}
	if a.Ingested != nil {
		errs = append(errs, a.Ingested.Close(ctx))
		a.Ingested = nil
	}
	if a.Core == nil {
		return errors.Join(errs...)
	}
	errs = append(errs, a.Core.Close(ctx))
	a.Core = nil
	return errors.Join(errs...)
}

func (a *App) closeListeners() {
	for _, ln := range a.listeners {
		ln.Close()
	}
}

func (a *App) housekeeping(ctx context.Context) {
	defer a.bg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if a.opts.Now != nil {
			now = a.opts.Now()
		}
		if err := a.Core.Store.DeleteExpired(ctx, now); err != nil && ctx.Err() == nil {
			a.log.Warn("housekeeping: delete expired", "err", err)
		}
		a.autoRotate(ctx, now)
	}
}

// autoRotate rotates pools whose newest key is older than keys.rotate_every.
func (a *App) autoRotate(ctx context.Context, now time.Time) {
	every := a.Core.Cfg.Keys.RotateEvery
	if every <= 0 {
		return
	}
	for _, p := range a.Pools.Pools() {
		ks, err := a.Core.Store.ListSigningKeys(ctx, p.ID())
		if err != nil || len(ks) == 0 {
			continue
		}
		newest := ks[len(ks)-1]
		if now.Sub(newest.CreatedAt) < every {
			continue
		}
		if _, err := a.Core.Keys.Rotate(ctx, p.ID(), p.Config().SigningAlg, MaxTokenLifetime(p.Config())); err != nil {
			a.log.Warn("automatic key rotation failed", "pool", p.ID(), "err", err)
		} else {
			a.log.Info("rotated signing key", "pool", p.ID())
		}
	}
}

func (a *App) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", a.metrics.Handler())
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if err := a.checkReady(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}

func (a *App) checkReady(ctx context.Context) error {
	a.mu.Lock()
	ready := a.ready
	a.mu.Unlock()
	if !ready {
		return errors.New("listeners not serving")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := a.Core.Store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for _, p := range a.Pools.Pools() {
		if _, err := a.Core.Keys.Signer(ctx, p.ID()); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
	}
	if a.gateway != nil {
		if err := a.gateway.Ready(); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	}
	return nil
}
