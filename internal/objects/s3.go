package objects

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/iam"
	"github.com/writ-id/writ/internal/sigv4"
	"github.com/writ-id/writ/internal/sts"
)

// Options configure the object store.
type Options struct {
	STS   *sts.Service
	Audit audit.Recorder
	Log   *slog.Logger
	Now   func() time.Time
	// NoAuth serves every request without SigV4 verification or IAM
	// authorization. It exists only as the baseline of BenchmarkObjects
	// (what authorization costs); no configuration sets it.
	NoAuth bool
}

// Handler serves the S3 REST subset.
type Handler struct {
	cfg      *config.Config
	disk     *disk
	verifier *sigv4.Verifier
	opts     Options
	maxSize  int64
	// policies are the bucket policies of the configuration, parsed.
	policies map[string]*iam.Policy
	// publicHost is the host (lower-case, no port) of the objects
	// listener's public URL, "" when none is configured.
	publicHost string
}

// New prepares the buckets of cfg under dataDir/objects.
func New(cfg *config.Config, opts Options) (*Handler, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	h := &Handler{cfg: cfg, disk: &disk{root: filepath.Join(cfg.DataDir, "objects")}, opts: opts, maxSize: cfg.Objects.MaxObjectSize,
		verifier: &sigv4.Verifier{Service: "s3", S3: true, Regions: []string{cfg.Region}, Now: opts.Now,
			Source: sts.Source{STS: opts.STS, Users: cfg.IAM.Users}}}
	h.policies = map[string]*iam.Policy{}
	if l := cfg.Serve.Objects; l != nil && l.PublicURL != "" {
		if u, err := url.Parse(l.PublicURL); err == nil {
			h.publicHost = strings.ToLower(u.Hostname())
		}
	}
	for b, doc := range cfg.Objects.BucketPolicies {
		p, err := iam.ParseKind(doc.Bytes(), iam.Resource)
		if err != nil {
			return nil, fmt.Errorf("objects: bucket policy of %s: %w", b, err)
		}
		h.policies[b] = p
	}
	for _, b := range cfg.Objects.Buckets {
		if err := h.disk.createBucket(b, h.opts.Now()); err != nil {
			return nil, fmt.Errorf("objects: bucket %s: %w", b, err)
		}
	}
	bs, err := h.disk.buckets()
	if err != nil {
		return nil, fmt.Errorf("objects: %w", err)
	}
	for _, b := range bs {
		if validBucket(b) {
			if err := h.disk.sweep(b); err != nil {
				return nil, fmt.Errorf("objects: bucket %s: %w", b, err)
			}
		}
	}
	return h, nil
}

// s3Error is an S3 error response.
type s3Error struct {
	status   int
	code     string
	message  string
	resource string
	// region is the region a request signed for another one should use
	// (the <Region> element); headersNotSigned lists, comma-separated, the
	// x-amz-* headers a signature left out (<HeadersNotSigned>).
	region           string
	headersNotSigned string
	// method and resourceType are a refused CORS preflight's <Method> and
	// <ResourceType> (OBJECT or BUCKET).
	method, resourceType string
	// key is NoSuchKey's missing key (<Key>).
	key string
}

func (e *s3Error) Error() string { return "objects: " + e.code + ": " + e.message }

func s3err(status int, code, msg string) *s3Error {
	return &s3Error{status: status, code: code, message: msg}
}

var errAccessDenied = s3err(http.StatusForbidden, "AccessDenied", "Access Denied")

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, e *s3Error, reqID string) {
	if r.Method == http.MethodHead {
		w.WriteHeader(e.status)
		return
	}
	v := struct {
		XMLName          xml.Name `xml:"Error"`
		Code             string   `xml:"Code"`
		Message          string   `xml:"Message"`
		BucketName       string   `xml:"BucketName,omitempty"`
		Key              string   `xml:"Key,omitempty"`
		UploadID         string   `xml:"UploadId,omitempty"`
		Resource         string   `xml:"Resource,omitempty"`
		Region           string   `xml:"Region,omitempty"`
		HeadersNotSigned string   `xml:"HeadersNotSigned,omitempty"`
		Method           string   `xml:"Method,omitempty"`
		ResourceType     string   `xml:"ResourceType,omitempty"`
		RequestID        string   `xml:"RequestId"`
	}{Code: e.code, Message: e.message, Resource: e.resource, Region: e.region, HeadersNotSigned: e.headersNotSigned,
		Method: e.method, ResourceType: e.resourceType, RequestID: reqID}
	// What S3 names in these errors besides the message: the missing key
	// (a copy's source, so named by the error), the request's bucket (not
	// for a copy, whose missing bucket may be either), the upload.
	switch e.code {
	case "NoSuchKey":
		v.Key = e.key
	case "NoSuchBucket", "BucketNotEmpty", "BucketAlreadyOwnedByYou":
		if r.Header.Get("X-Amz-Copy-Source") == "" {
			v.BucketName, _ = h.split(r)
		}
	case "NoSuchUpload":
		v.UploadID = r.URL.Query().Get("uploadId")
	}
	b, _ := xml.Marshal(v)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}

// caller is the authenticated principal of a request.
type caller struct {
	sets    []iam.Set
	context iam.MapContext
	who     string
	session *sts.Session
	sig     sigv4.Result
	// role is the role ARN of a role session ("" for an IAM user), which a
	// bucket policy's Principal may name besides who (the session or user).
	role string
}

// ServeHTTP authenticates, routes and authorizes one S3 request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// S3's ids are opaque hex; ours keep all 128 bits (time-ordered, so
	// the first half alone would collide within a millisecond).
	reqID := strings.ToUpper(strings.ReplaceAll(audit.NewRequestID(), "-", ""))
	if v := r.Header.Get("X-Request-Id"); v != "" && len(v) <= 128 && !strings.ContainsAny(v, "\r\n") {
		reqID = v // the caller's request id, so one request is one id across hops
	}
	w.Header().Set("x-amz-request-id", reqID)
	w.Header().Set("x-amz-id-2", reqID)
	ctx := audit.WithRequest(r.Context(), audit.RequestInfo{ID: reqID, SourceIP: sourceIP(r)})
	r = r.WithContext(ctx)
	bucket, key := h.split(r)
	if r.Method == http.MethodOptions && bucket != "" {
		// A CORS preflight: never signed (a browser sends it on its own).
		if err := h.preflight(w, r, bucket, key); err != nil {
			h.writeError(w, r, h.internal(err, reqID), reqID)
		}
		return
	}
	// An actual cross-origin request: its answer, whatever it is, carries
	// the CORS headers of the rule allowing it.
	h.actualCORS(w, r, bucket)
	// The query, parsed once for authentication's answers, routing and the
	// operations (sigv4 parses its own).
	q := r.URL.Query()
	if r.Method == http.MethodHead && bucket != "" && key == "" && h.disk.hasBucket(bucket) {
		// HeadBucket names the region even to a caller it refuses, as S3
		// does: the SDK's GetBucketRegion asks anonymously.
		w.Header().Set("x-amz-bucket-region", h.cfg.Region)
	}
	var c *caller
	var err error
	switch {
	case h.opts.NoAuth:
		c = &caller{}
	case h.policies[bucket] != nil && unsigned(r, q):
		// Anonymous: only a bucket policy granting Principal "*" lets it in.
		c = h.anonymous(r)
	case unsigned(r, q) && h.missingBucket(bucket) && !(r.Method == http.MethodPut && key == ""):
		// As S3: bucket names are global and their existence no secret, so
		// an anonymous request for a bucket that does not exist (but to
		// create it) is told so rather than refused.
		err = errNoSuchBucket()
	default:
		c, err = h.authenticate(r, q)
	}
	if err != nil {
		var se *s3Error
		if !errors.As(err, &se) {
			se = s3err(http.StatusInternalServerError, "InternalError", "internal error")
		}
		reason := se.code + ": " + se.message
		if se.headersNotSigned != "" {
			reason += ": " + se.headersNotSigned
		}
		h.record(ctx, "s3:authenticate", bucket, key, nil, audit.Deny, reason)
		h.writeError(w, r, se, reqID)
		return
	}
	r = r.WithContext(context.WithValue(ctx, verifiedKey{}, c.sig))
	err = h.route(w, r, c, bucket, key, q)
	if err != nil {
		h.writeError(w, r, h.internal(err, reqID), reqID)
	}
}

// internal is err as an S3 error: itself when it is one, else (logged) 500
// InternalError.
func (h *Handler) internal(err error, reqID string) *s3Error {
	var se *s3Error
	if !errors.As(err, &se) {
		h.opts.Log.Error("objects: internal error", "request_id", reqID, "err", err)
		se = s3err(http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
	}
	return se
}

// split finds bucket and key in a virtual-hosted or path-style request.
// Which of the two a request is follows from its Host alone (never from
// whether a bucket of that name exists, so that a request for a missing
// bucket is not served as one for another bucket): see vhostBucket.
func (h *Handler) split(r *http.Request) (bucket, key string) {
	if b, ok := h.vhostBucket(r.Host); ok {
		return b, strings.TrimPrefix(r.URL.Path, "/")
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key
}

// vhostBucket returns the bucket a virtual-hosted request's Host names, and
// false for the store's own host (a path-style request). The Host (port
// dropped, case ignored) names bucket b when it is
//   - b.<host of objects.public_url>, when the public URL names a host (and
//     then nothing else does);
//   - b.s3.<anything>: the labels before the last label "s3", as AWS's own
//     endpoints (s3.amazonaws.com, s3.<region>.amazonaws.com) and most S3
//     emulators' are named;
//   - b.localhost (what clients of an endpoint http://localhost:port send:
//     *.localhost resolves to the loopback address).
//
// An IP address, the public URL's host itself, localhost, a host whose first
// label is "s3" and every other host are the store's own host.
func (h *Handler) vhostBucket(host string) (string, bool) {
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" || net.ParseIP(strings.Trim(host, "[]")) != nil {
		return "", false
	}
	if pub := h.publicHost; pub != "" && net.ParseIP(pub) == nil {
		// With a public URL, it alone decides: a host such as
		// objects.s3.svc.cluster.local (a namespace named s3) is then the
		// store's own, not bucket "objects".
		b, ok := strings.CutSuffix(host, "."+pub)
		return b, ok && b != ""
	}
	labels := strings.Split(host, ".")
	for i := len(labels) - 1; i >= 0; i-- {
		if labels[i] == "s3" {
			// The last one: a bucket name may hold a label "s3" too.
			if i == 0 {
				return "", false
			}
			return strings.Join(labels[:i], "."), true
		}
	}
	if b, ok := strings.CutSuffix(host, ".localhost"); ok {
		return b, true
	}
	return "", false
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

var s3Codes = map[string]*s3Error{
	"MissingAuthenticationToken":   errAccessDenied,
	"IncompleteSignature":          s3err(http.StatusBadRequest, "AuthorizationHeaderMalformed", "The authorization header is malformed"),
	"AuthorizationHeaderMalformed": s3err(http.StatusBadRequest, "AuthorizationHeaderMalformed", "The authorization header is malformed"),
	"InvalidAccessKeyId":           s3err(http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."),
	"InvalidToken":                 s3err(http.StatusBadRequest, "InvalidToken", "The provided token is malformed or otherwise invalid."),
	"ExpiredToken":                 s3err(http.StatusBadRequest, "ExpiredToken", "The provided token has expired."),
	"SignatureDoesNotMatch":        s3err(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."),
	"RequestTimeTooSkewed":         s3err(http.StatusForbidden, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large."),
	"AccessDenied":                 s3err(http.StatusForbidden, "AccessDenied", "Request has expired"),
}

// authenticate verifies r (of query q) and returns its caller.
func (h *Handler) authenticate(r *http.Request, q url.Values) (*caller, error) {
	if err := authorizationType(r.Header.Get("Authorization")); err != nil {
		return nil, err
	}
	res, err := h.verifier.Verify(r)
	if err != nil {
		var e *sigv4.Error
		if errors.As(err, &e) {
			if se := h.wrongRegion(e); se != nil {
				return nil, se
			}
			if se, ok := s3Codes[e.Code]; ok {
				return nil, se
			}
			if e.Code == "AuthorizationQueryParametersError" {
				return nil, s3err(http.StatusBadRequest, e.Code, presignProblem(q, e))
			}
			if e.Code == "InvalidArgument" {
				return nil, s3err(http.StatusBadRequest, e.Code, e.Message)
			}
			return nil, s3err(http.StatusBadRequest, "InvalidRequest", e.Message)
		}
		return nil, err
	}
	if names := notSigned(r.Header, res.SignedHeaders); names != "" {
		return nil, &s3Error{status: http.StatusForbidden, code: "AccessDenied",
			message: "There were headers present in the request which were not signed", headersNotSigned: names}
	}
	sc, ok := h.opts.STS.CallerOf(res.Credentials.Principal)
	if !ok {
		return nil, errAccessDenied
	}
	// The caller's context is its own (CallerOf builds it per call): the
	// request's keys join it (lower-case, as MapContext.Set stores them).
	cx := sc.Context
	now := h.opts.Now()
	cx["aws:sourceip"] = []string{sourceIP(r)}
	cx["aws:securetransport"] = []string{strconv.FormatBool(r.TLS != nil)}
	cx["aws:currenttime"] = []string{now.UTC().Format(time.RFC3339)}
	cx["aws:epochtime"] = []string{strconv.FormatInt(now.Unix(), 10)}
	c := &caller{sets: sc.Sets, context: cx, who: sc.ARN, session: sc.Session, sig: res}
	if sc.Session != nil {
		c.role = config.RoleARN(h.cfg.Account, sc.Session.Role)
	}
	return c, nil
}

// notSigned lists (lower-case, sorted, comma-separated; "" when none) the
// x-amz-* headers of hdr missing from signed, the names of the headers a
// SigV4 signature covers (compared case-insensitively). S3 refuses such a request (403 AccessDenied, the list in
// <HeadersNotSigned>) whether signed in the Authorization header or the
// query: a header nobody signed (x-amz-copy-source added to a presigned
// PUT, x-amz-meta-* or x-amz-metadata-directive added in transit) must not
// change what a signed request does. The AWS SDKs sign every x-amz-*
// header they send, and their presigners move the ones they do not sign
// into the (signed) query.
func notSigned(hdr http.Header, signed []string) string {
	var names []string
	for k := range hdr { // http.Header keys are distinct; SignedHeaders are lower case (SigV4)
		if len(k) < 6 || !strings.EqualFold(k[:6], "x-amz-") {
			continue
		}
		if lk := strings.ToLower(k); !slices.Contains(signed, lk) {
			names = append(names, lk)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// wrongRegion is S3's answer to a signature scoped to another region than
// the store's: 400 AuthorizationHeaderMalformed (presigned:
// AuthorizationQueryParametersError) saying which region to use, and
// naming it in <Region>; nil when the scope's region is not the problem.
// sigv4 refuses such a scope (as one for another service) as
// AuthorizationHeaderMalformed, and says in e what the scope was.
func (h *Handler) wrongRegion(e *sigv4.Error) *s3Error {
	if e.Code != "AuthorizationHeaderMalformed" || e.Scope == nil || e.Scope.Region == h.cfg.Region {
		return nil
	}
	region := e.Scope.Region
	if e.Presigned {
		return &s3Error{status: http.StatusBadRequest, code: "AuthorizationQueryParametersError", region: h.cfg.Region,
			message: "Error parsing the X-Amz-Credential parameter; the region '" + region + "' is wrong; expecting '" + h.cfg.Region + "'"}
	}
	return &s3Error{status: http.StatusBadRequest, code: "AuthorizationHeaderMalformed", region: h.cfg.Region,
		message: "The authorization header is malformed; the region '" + region + "' is wrong; expecting '" + h.cfg.Region + "'"}
}

// authorizationType refuses an Authorization header of a scheme other than
// SigV4 as S3 does: SigV2 ("AWS AKID:signature") is InvalidRequest,
// anything else (Bearer, Basic, ...) 400 InvalidArgument "Unsupported
// Authorization Type".
func authorizationType(auth string) error {
	if auth == "" {
		return nil
	}
	scheme, _, _ := strings.Cut(strings.TrimSpace(auth), " ")
	switch scheme {
	case "AWS4-HMAC-SHA256":
		return nil
	case "AWS":
		return s3err(http.StatusBadRequest, "InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
	}
	return s3err(http.StatusBadRequest, "InvalidArgument", "Unsupported Authorization Type")
}

// presignProblem is S3's message for the parameter of a presigned request
// (of query q) that sigv4 refused, e.Param; e's own message when S3 has
// none for it.
func presignProblem(q url.Values, e *sigv4.Error) string {
	switch e.Param {
	case "X-Amz-Algorithm":
		return `X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"`
	case "X-Amz-Credential":
		return `Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`
	case "X-Amz-Date":
		return `X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`
	case "X-Amz-Expires":
		return expiresProblem(q.Get("X-Amz-Expires"), e.Message)
	case "X-Amz-SignedHeaders":
		return "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
	}
	return e.Message
}

// expiresProblem is S3's message for an X-Amz-Expires of v that sigv4
// refused: S3 tells apart what sigv4 does not (not a number, negative, 0,
// over a week); fallback when v is none of these.
func expiresProblem(v, fallback string) string {
	switch n, err := strconv.Atoi(v); {
	case err != nil:
		return "X-Amz-Expires should be a number"
	case n < 0:
		return "X-Amz-Expires must be non-negative"
	case n > 604800:
		return "X-Amz-Expires must be less than a week (in seconds) that is; 604800"
	case n == 0:
		return "X-Amz-Expires must be at least 1 second"
	}
	return fallback
}

// unsigned reports whether r, of query q, carries no authentication at all
// (no Authorization header, no presigned query).
func unsigned(r *http.Request, q url.Values) bool {
	if r.Header.Get("Authorization") != "" {
		return false
	}
	return !q.Has("X-Amz-Algorithm") && !q.Has("X-Amz-Credential") && !q.Has("X-Amz-Signature") && !q.Has("AWSAccessKeyId") && !q.Has("Signature")
}

// anonymousID is the principal of unsigned requests: no Principal matches
// it but "*".
const anonymousID = "anonymous"

// anonymous is the caller of an unsigned request: no identity policy, so
// only a bucket policy's Allow to "*" grants it anything (as S3 does for
// public buckets).
func (h *Handler) anonymous(r *http.Request) *caller {
	cx := iam.MapContext{}
	now := h.opts.Now()
	cx.Set("aws:SourceIp", sourceIP(r))
	cx.Set("aws:SecureTransport", strconv.FormatBool(r.TLS != nil))
	cx.Set("aws:CurrentTime", now.UTC().Format(time.RFC3339))
	cx.Set("aws:EpochTime", strconv.FormatInt(now.Unix(), 10))
	return &caller{sets: []iam.Set{{Name: "identity"}}, context: cx, who: anonymousID}
}

// authorize decides action on resource for the caller and records it.
func (h *Handler) authorize(ctx context.Context, c *caller, action, bucket, key string, extra map[string]string) error {
	if h.opts.NoAuth {
		return nil
	}
	res := "arn:aws:s3:::" + bucket
	if key != "" {
		res += "/" + key
	}
	if bucket == "" {
		res = "*"
	}
	cx := c.context
	for k, v := range extra {
		cx = cloneWith(cx, k, v)
	}
	req := &iam.Request{Action: action, Resource: res, Context: cx}
	d := iam.Authorize(req, c.sets[0], c.sets[1:]...)
	if p := h.policies[bucket]; p != nil {
		d = h.withBucketPolicy(req, p, c, d)
	}
	outcome := audit.Allow
	if d.Effect != iam.Allow {
		outcome = audit.Deny
	}
	h.record(ctx, action, bucket, key, c, outcome, d.Reason)
	if d.Effect != iam.Allow {
		if action != "s3:CreateBucket" && h.missingBucket(bucket) {
			// As S3: a bucket that does not exist is NoSuchBucket to
			// everyone (bucket names are global, their existence no
			// secret); only an existing bucket's keys are kept from who
			// may not list them.
			return errNoSuchBucket()
		}
		return errAccessDenied
	}
	return nil
}

// missingBucket reports whether b names a bucket (a valid name) that does
// not exist.
func (h *Handler) missingBucket(b string) bool {
	return b != "" && validBucket(b) && !h.disk.bucketExists(b)
}

// withBucketPolicy combines the identity-based decision d with the bucket's
// policy as AWS does within one account: an explicit Deny in either
// refuses; otherwise an Allow in either allows, the bucket policy's only
// where its Principal names the caller: "*", the IAM user or the role
// session (then nothing else limits it), or the session's role (then a
// session policy or permissions boundary still limits it). The account
// ("arn:aws:iam::<account>:root" or the bare id) stands for every
// principal of the account in a Deny, but in an Allow it only delegates
// to the identity policies, granting nothing itself.
func (h *Handler) withBucketPolicy(req *iam.Request, p *iam.Policy, c *caller, d iam.Decision) iam.Decision {
	if d.Effect == iam.Deny {
		return d
	}
	set := iam.Set{Name: "bucket", Policies: []*iam.Policy{p}}
	eval := func(id string) iam.Decision {
		r := *req
		r.Principal = &iam.Principal{Type: "AWS", ID: id}
		return iam.Authorize(&r, set)
	}
	var direct, viaRole *iam.Decision
	var last iam.Decision
	for i, id := range []string{c.who, c.role, "arn:aws:iam::" + h.cfg.Account + ":root", h.cfg.Account} {
		if id == "" || (i > 1 && c.who == anonymousID) { // anonymous is no principal of the account
			continue
		}
		e := eval(id)
		switch {
		case e.Effect == iam.Deny:
			return e
		case e.Effect == iam.Allow && i == 0 && direct == nil:
			direct = &e
		case e.Effect == iam.Allow && i == 1 && viaRole == nil:
			viaRole = &e
		case i == 0:
			last = e
		}
	}
	switch {
	case d.Effect == iam.Allow:
		return d
	case direct != nil:
		return *direct
	case viaRole != nil:
		for _, s := range c.sets[1:] {
			if len(s.Policies) == 0 {
				continue
			}
			if l := iam.Authorize(req, s); l.Effect != iam.Allow {
				l.Reason = "the bucket policy allows the role, but " + l.Reason
				return l
			}
		}
		return *viaRole
	}
	d.Reason += "; " + last.Reason
	return d
}

func cloneWith(cx iam.MapContext, k, v string) iam.MapContext {
	out := make(iam.MapContext, len(cx)+1)
	for kk, vv := range cx {
		out[kk] = vv
	}
	out.Set(k, v)
	return out
}

func (h *Handler) record(ctx context.Context, action, bucket, key string, c *caller, outcome, reason string) {
	if h.opts.Audit == nil {
		return
	}
	e := audit.Event{Component: "objects", Action: action, Outcome: outcome, Explanation: reason, Resource: "arn:aws:s3:::" + bucket + "/" + key}
	if c != nil {
		e.Sub = c.who
		if s := c.session; s != nil {
			e.Role, e.IdentityID, e.ActorChain = s.Role, s.IdentityID, s.ActorChain
			e.Sub = s.Subject
		}
	}
	if outcome == audit.Deny {
		e.Reason = reason
	}
	h.opts.Audit.Record(ctx, e)
}

// route serves r, of query q.
func (h *Handler) route(w http.ResponseWriter, r *http.Request, c *caller, bucket, key string, q url.Values) error {
	ctx := r.Context()
	// A sub-resource the store does not implement is refused before any
	// base operation could run in its place.
	if subresource(q) != "" {
		return errNotImplemented()
	}
	if err := checkHeaders(r, h.cfg.Account); err != nil {
		return err
	}
	// Buckets are not versioned: every object's version is "null", and an
	// operation on any other version must not act on the current object.
	if v, ok := q["versionId"]; ok && (len(v) != 1 || v[0] != "null") {
		return errInvalidVersion()
	}
	if bucket != "" && !validBucket(bucket) {
		// Also keeps "." and ".." from ever naming a directory.
		return s3err(http.StatusBadRequest, "InvalidBucketName", "The specified bucket is not valid.")
	}
	if hasKey(q, "cors") {
		if !q.Has("cors") || bucket == "" || key != "" {
			return errNotImplemented() // no object has a CORS configuration
		}
		return h.bucketCORS(w, r, c, bucket)
	}
	if hasKey(q, "location") {
		if r.Method != http.MethodGet || bucket == "" || key != "" {
			return errNotImplemented()
		}
		return h.getBucketLocation(w, r, c, bucket)
	}
	if bucket != "" && misplaced(q, r.Method, key != "") {
		return s3err(http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
	switch {
	case bucket == "":
		if r.Method != http.MethodGet {
			return s3err(http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
		}
		if err := h.authorize(ctx, c, "s3:ListAllMyBuckets", "", "", nil); err != nil {
			return err
		}
		return h.listBuckets(w)
	case key == "":
		switch r.Method {
		case http.MethodPut:
			if err := h.authorize(ctx, c, "s3:CreateBucket", bucket, "", nil); err != nil {
				return err
			}
			if !newBucketName(bucket) {
				return s3err(http.StatusBadRequest, "InvalidBucketName", "The specified bucket is not valid.")
			}
			if err := h.locationConstraint(r); err != nil {
				return err
			}
			if h.disk.bucketExists(bucket) {
				if h.cfg.Region == "us-east-1" {
					// S3 answers us-east-1's owner 200 (a legacy it keeps).
					w.Header().Set("Location", "/"+bucket)
					return nil
				}
				return s3err(http.StatusConflict, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.")
			}
			if err := h.disk.createBucket(bucket, h.opts.Now()); err != nil {
				return err
			}
			w.Header().Set("Location", "/"+bucket)
			return nil
		case http.MethodHead:
			if err := h.authorize(ctx, c, "s3:ListBucket", bucket, "", nil); err != nil {
				return err
			}
			if !h.disk.bucketExists(bucket) {
				return errNoSuchBucket()
			}
			return nil
		case http.MethodGet:
			if q.Has("uploads") {
				return h.listUploads(w, r, c, bucket, q)
			}
			return h.listObjects(w, r, c, bucket, q)
		case http.MethodDelete:
			return h.deleteBucket(w, r, c, bucket)
		case http.MethodPost:
			if q.Has("delete") {
				return h.deleteObjects(w, r, c, bucket)
			}
		}
		return s3err(http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
	switch r.Method {
	case http.MethodPut:
		if q.Has("uploadId") || q.Has("partNumber") {
			return h.uploadPart(w, r, c, bucket, key, q)
		}
		if _, copying := r.Header["X-Amz-Copy-Source"]; copying {
			return h.copyObject(w, r, c, bucket, key) // an empty source is refused there
		}
		if err := h.authorize(ctx, c, "s3:PutObject", bucket, key, nil); err != nil {
			return err
		}
		return h.putObject(w, r, bucket, key)
	case http.MethodPost:
		if q.Has("uploads") {
			return h.createUpload(w, r, c, bucket, key)
		}
		if q.Has("uploadId") {
			return h.completeUpload(w, r, c, bucket, key, q)
		}
	case http.MethodGet, http.MethodHead:
		if r.Method == http.MethodGet && q.Has("uploadId") {
			return h.listParts(w, r, c, bucket, key, q)
		}
		if err := h.authorize(ctx, c, "s3:GetObject", bucket, key, nil); err != nil {
			return err
		}
		return h.getObject(w, r, c, bucket, key, q)
	case http.MethodDelete:
		if q.Has("uploadId") {
			return h.abortUpload(w, r, c, bucket, key, q)
		}
		if r.Header.Get("X-Amz-If-Match-Last-Modified-Time") != "" || r.Header.Get("X-Amz-If-Match-Size") != "" {
			return errNotImplemented() // S3 takes them in directory buckets only
		}
		if err := h.deleteOne(ctx, c, bucket, key, r.Header.Get("If-Match")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return s3err(http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
}

// newBucketName reports whether CreateBucket takes b: validBucket, and
// S3's further rules for new names (a letter or digit at each end, not an
// IP address, none of the prefixes and suffixes S3 keeps for itself).
func newBucketName(b string) bool {
	if !validBucket(b) {
		return false
	}
	last := b[len(b)-1]
	if last == '-' || last == '.' || net.ParseIP(b) != nil {
		return false
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(b, p) {
			return false
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(b, s) {
			return false
		}
	}
	return true
}

// locationConstraint checks CreateBucket's CreateBucketConfiguration as
// S3 does: its LocationConstraint must be the store's region, and in
// us-east-1 there must be none (nor anywhere else: a missing one is refused
// outside us-east-1).
func (h *Handler) locationConstraint(r *http.Request) error {
	body, err := readSmall(r, 64<<10, errMalformedXML(), false)
	if err != nil {
		return err
	}
	var conf struct {
		LocationConstraint string `xml:"LocationConstraint"`
	}
	if len(strings.TrimSpace(string(body))) > 0 && xml.Unmarshal(body, &conf) != nil {
		return errMalformedXML()
	}
	switch lc, region := conf.LocationConstraint, h.cfg.Region; {
	case lc == "" && region == "us-east-1", lc == region && lc != "us-east-1":
		return nil
	case lc == "us-east-1":
		return s3err(http.StatusBadRequest, "InvalidLocationConstraint", "The specified location-constraint is not valid")
	case lc == "":
		return s3err(http.StatusBadRequest, "IllegalLocationConstraintException",
			"The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.")
	default:
		return s3err(http.StatusBadRequest, "IllegalLocationConstraintException",
			"The "+lc+" location constraint is incompatible for the region specific endpoint this request was sent to.")
	}
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 || strings.Contains(b, "..") {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return b[0] != '-' && b[0] != '.'
}

func writeXML(w http.ResponseWriter, v any) error {
	b, err := xml.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Write([]byte(xml.Header))
	w.Write(b)
	return nil
}

const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

func (h *Handler) listBuckets(w http.ResponseWriter) error {
	bs, err := h.disk.buckets()
	if err != nil {
		return err
	}
	type bucketXML struct {
		Name         string `xml:"Name"`
		CreationDate string `xml:"CreationDate"`
	}
	v := struct {
		XMLName xml.Name `xml:"ListAllMyBucketsResult"`
		NS      string   `xml:"xmlns,attr"`
		Owner   ownerXML
		Buckets []bucketXML `xml:"Buckets>Bucket"`
	}{NS: s3NS, Owner: h.owner()}
	for _, b := range bs {
		v.Buckets = append(v.Buckets, bucketXML{Name: b, CreationDate: h.disk.bucketCreated(b).Format(time.RFC3339)})
	}
	return writeXML(w, v)
}

func (h *Handler) putObject(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	if len(key) > 1024 {
		return s3err(http.StatusBadRequest, "KeyTooLongError", "Your key is too long")
	}
	m, err := requestMeta(r)
	if err != nil {
		return err
	}
	m.LastModified = h.opts.Now().UTC()
	d, err := newDigests(r, "", true)
	if err != nil {
		return err
	}
	if r.ContentLength > h.maxSize {
		return s3err(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
	}
	cond, err := writeConditions(r, bucket, key)
	if err != nil {
		return err
	}
	if cond != nil {
		// Refused before the body is read when it already fails; checked
		// again, atomically with the write, once the body is on disk.
		cur, err := h.disk.head(bucket, key)
		if errors.Is(err, errNoBucket) {
			return errNoSuchBucket()
		}
		if err := cond(cur, err); err != nil {
			return err
		}
	}
	// Nothing is visible unless every digest (and every chunk signature)
	// holds once the last byte is on disk.
	final, err := h.disk.put(bucket, key, d.wrap(io.LimitReader(r.Body, h.maxSize+1)), m, func(size int64, m *meta) error {
		if size > h.maxSize {
			return s3err(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
		}
		if err := d.check(); err != nil {
			return err
		}
		if d.alg != "" {
			m.Checksum = &objChecksum{Alg: d.alg, Value: base64.StdEncoding.EncodeToString(d.sum.Sum(nil)), Type: "FULL_OBJECT"}
		}
		return nil
	}, cond)
	if errors.Is(err, errNoBucket) {
		return errNoSuchBucket()
	}
	if err != nil {
		return err
	}
	w.Header().Set("ETag", final.ETag)
	if c := final.Checksum; c != nil {
		w.Header().Set("x-amz-checksum-"+c.Alg, c.Value)
		w.Header().Set("x-amz-checksum-type", c.Type)
	}
	return nil
}

// maxUserMeta is S3's limit on an object's user metadata: the bytes of
// every x-amz-meta-* name (without the prefix) and value together.
const maxUserMeta = 2 << 10

// storedHeaders are the headers besides Content-Type that S3 keeps with an
// object as its write gave them, and serves back on GetObject and
// HeadObject.
var storedHeaders = [...]string{"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires"}

// requestMeta is the metadata of r that PutObject, CreateMultipartUpload
// and CopyObject with REPLACE store: Content-Type, the storedHeaders and
// the x-amz-meta-* user metadata. aws-chunked is how the body was sent,
// not how the object is encoded: S3 drops it from Content-Encoding, and so
// does requestMeta. A value with a control byte is InvalidArgument rather
// than stored (net/http refuses such a header from the network already;
// this holds however the handler is reached). User metadata over
// maxUserMeta is MetadataTooLarge.
func requestMeta(r *http.Request) (meta, error) {
	m := meta{ContentType: r.Header.Get("Content-Type"), UserMeta: map[string]string{}}
	invalid := func(name string) error {
		return s3err(http.StatusBadRequest, "InvalidArgument", "Invalid value for header "+name)
	}
	if badValue(m.ContentType) {
		return meta{}, invalid("Content-Type")
	}
	for _, k := range storedHeaders {
		v := strings.Join(r.Header.Values(k), ",")
		if k == "Content-Encoding" {
			v = withoutChunked(v)
		}
		if badValue(v) {
			return meta{}, invalid(k)
		}
		if v != "" {
			if m.Headers == nil {
				m.Headers = map[string]string{}
			}
			m.Headers[k] = v
		}
	}
	size := 0
	for k, vs := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-meta-") {
			v := strings.Join(vs, ",")
			if badValue(v) {
				return meta{}, invalid(k)
			}
			name := strings.TrimPrefix(lk, "x-amz-meta-")
			m.UserMeta[name] = v
			size += len(name) + len(v)
		}
	}
	if size > maxUserMeta {
		return meta{}, s3err(http.StatusBadRequest, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size")
	}
	return m, nil
}

// withoutChunked is the Content-Encoding list v without aws-chunked.
func withoutChunked(v string) string {
	var keep []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" && !strings.EqualFold(e, "aws-chunked") {
			keep = append(keep, e)
		}
	}
	return strings.Join(keep, ",")
}
