package identity

import (
	"context"
	"encoding/xml"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/iam"
	"github.com/writ-id/writ/internal/sigv4"
	"github.com/writ-id/writ/internal/sts"
)

// caller is who signed an STS request.
type caller struct {
	arn, userID string
	policies    iam.Set
	limits      []iam.Set
	session     *sts.Session
	context     iam.MapContext // the condition keys the caller brings (aws:PrincipalTag/…)
	aliases     []string       // other names of the caller a policy may use (iam.Principal)
}

// stsCodes maps verifier codes to STS's (query protocol) names and statuses.
var stsCodes = map[string]struct {
	code   string
	status int
}{
	"MissingAuthenticationToken":        {"MissingAuthenticationToken", http.StatusForbidden},
	"IncompleteSignature":               {"IncompleteSignature", http.StatusBadRequest},
	"AuthorizationHeaderMalformed":      {"IncompleteSignature", http.StatusBadRequest},
	"AuthorizationQueryParametersError": {"IncompleteSignature", http.StatusBadRequest},
	"InvalidClientTokenId":              {"InvalidClientTokenId", http.StatusForbidden},
	"InvalidAccessKeyId":                {"InvalidClientTokenId", http.StatusForbidden},
	"ExpiredTokenException":             {"ExpiredToken", http.StatusBadRequest},
	"InvalidToken":                      {"InvalidClientTokenId", http.StatusForbidden},
	"ExpiredToken":                      {"ExpiredToken", http.StatusForbidden}, // AWS's common error: 403
	"SignatureDoesNotMatch":             {"SignatureDoesNotMatch", http.StatusForbidden},
	"RequestTimeTooSkewed":              {"SignatureDoesNotMatch", http.StatusForbidden},
	"AccessDenied":                      {"RequestExpired", http.StatusBadRequest},
}

// authenticate verifies the request's SigV4 signature and returns who made it.
func (h *Handler) authenticate(r *http.Request) (*caller, error) {
	res, err := h.sigv4.Verify(r)
	if err != nil {
		var e *sigv4.Error
		if errors.As(err, &e) {
			if se := h.scopeError(e); se != nil {
				return nil, se
			}
			m, ok := stsCodes[e.Code]
			if !ok {
				m = stsCodes["IncompleteSignature"]
			}
			return nil, &stsError{m.status, m.code, e.Message}
		}
		return nil, err
	}
	sc, ok := h.opts.STS.CallerOf(res.Credentials.Principal)
	if !ok {
		return nil, &stsError{http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid"}
	}
	c := &caller{arn: sc.ARN, userID: sc.UserID, policies: sc.Sets[0], limits: sc.Sets[1:], session: sc.Session, context: sc.Context,
		aliases: []string{"arn:aws:iam::" + h.opts.STS.Account() + ":root", h.opts.STS.Account()}}
	if sc.Session != nil {
		// A policy naming the role names each of its sessions.
		c.aliases = append(c.aliases, config.RoleARN(h.opts.STS.Account(), sc.Session.Role))
	}
	return c, nil
}

// scopeError is STS's answer to a request whose credential scope names
// another region or service than this listener's: 403 SignatureDoesNotMatch
// with AWS's messages, where the verifier says AuthorizationHeaderMalformed
// (as it does for any scope it refuses, and for other faults of the
// header). nil when the scope did not parse or names this region and sts,
// and the verifier's error stands.
func (h *Handler) scopeError(e *sigv4.Error) *stsError {
	if e.Code != "AuthorizationHeaderMalformed" || e.Scope == nil {
		return nil
	}
	switch {
	case e.Scope.Service != h.sigv4.Service:
		return &stsError{http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to correct service: '" + h.sigv4.Service + "'."}
	case !slices.Contains(h.sigv4.Regions, e.Scope.Region):
		return &stsError{http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to a valid region."}
	}
	return nil
}

type getCallerIdentityResponse struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	NS      string   `xml:"xmlns,attr"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	Metadata struct {
		RequestID string `xml:"RequestId"`
	} `xml:"ResponseMetadata"`
}

func (h *Handler) getCallerIdentity(ctx context.Context, r *http.Request) (any, error) {
	c, err := h.authenticate(r)
	if err != nil {
		return nil, err
	}
	var out getCallerIdentityResponse
	out.NS = stsNS
	out.Result.Arn, out.Result.UserID, out.Result.Account = c.arn, c.userID, h.opts.STS.Account()
	out.Metadata.RequestID = audit.Request(ctx).ID
	return out, nil
}

type assumeRoleResponse struct {
	XMLName xml.Name `xml:"AssumeRoleResponse"`
	NS      string   `xml:"xmlns,attr"`
	Result  struct {
		Credentials     xmlCredentials `xml:"Credentials"`
		AssumedRoleUser struct {
			Arn           string `xml:"Arn"`
			AssumedRoleID string `xml:"AssumedRoleId"`
		} `xml:"AssumedRoleUser"`
	} `xml:"AssumeRoleResult"`
	Metadata struct {
		RequestID string `xml:"RequestId"`
	} `xml:"ResponseMetadata"`
}

// assumeRole lets an IAM user or a role session take a role its policies
// allow (sts:AssumeRole on the role) and the role's trust policy admits.
func (h *Handler) assumeRole(ctx context.Context, r *http.Request) (any, error) {
	c, err := h.authenticate(r)
	if err != nil {
		return nil, err
	}
	f := r.Form
	if err := unsupportedParams(f); err != nil {
		return nil, err
	}
	roleARN, sessionName := f.Get("RoleArn"), f.Get("RoleSessionName")
	if roleARN == "" || !sessionNameRE.MatchString(sessionName) {
		return nil, senderErr("ValidationError", "RoleArn and a RoleSessionName of 2 to 64 characters of [\\w+=,.@-] are required")
	}
	if err := validRoleARN(roleARN); err != nil {
		return nil, err
	}
	role, ok := h.opts.STS.Role(roleARN)
	if !ok {
		return nil, &stsError{http.StatusForbidden, "AccessDenied", "User: " + c.arn + " is not authorized to perform: sts:AssumeRole on resource: " + roleARN}
	}
	dur := time.Hour
	if s := f.Get("DurationSeconds"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 900 {
			return nil, senderErr("ValidationError", "DurationSeconds must be at least 900")
		}
		dur = time.Duration(n) * time.Second
	}
	if dur > role.MaxSession || (c.session != nil && dur > time.Hour) {
		return nil, senderErr("ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	sessionPolicy, err := sessionPolicyOf(f.Get("Policy"))
	if err != nil {
		return nil, err
	}
	externalID := f.Get("ExternalId")
	if externalID != "" && (len(externalID) < 2 || len(externalID) > 1224 || !externalIDRE.MatchString(externalID)) {
		return nil, senderErr("ValidationError", "ExternalId must be 2 to 1224 characters of [\\w+=,.@:/-]")
	}
	tags, transitive, err := h.sessionTags(f, c.session)
	if err != nil {
		return nil, err
	}
	cx := iam.MapContext{}
	for k, v := range c.context {
		cx.Set(k, v...)
	}
	cx.Set("aws:SourceIp", sourceIP(r))
	cx.Set("aws:CurrentTime", h.opts.Now().UTC().Format(time.RFC3339))
	cx.Set("sts:RoleSessionName", sessionName)
	if externalID != "" {
		cx.Set("sts:ExternalId", externalID)
	}
	tagKeys := slices.Sorted(maps.Keys(tags)) // aws:TagKeys in one order, whatever the map's
	for _, k := range tagKeys {
		cx.Set("aws:RequestTag/"+k, tags[k])
	}
	if len(tagKeys) > 0 {
		cx.Set("aws:TagKeys", tagKeys...)
	}
	principal := &iam.Principal{Type: "AWS", ID: c.arn, Aliases: c.aliases}
	allowed := iam.Authorize(&iam.Request{Action: "sts:AssumeRole", Resource: role.ARN, Context: cx}, c.policies, c.limits...)
	trust := iam.Authorize(&iam.Request{Action: "sts:AssumeRole", Principal: principal, Context: cx},
		iam.Set{Name: "trust", Policies: []*iam.Policy{role.Trust}})
	if len(tags) > 0 && allowed.Effect == iam.Allow && trust.Effect == iam.Allow {
		// Session tags need sts:TagSession from the caller's policies and
		// the role's trust policy too.
		allowed = iam.Authorize(&iam.Request{Action: "sts:TagSession", Resource: role.ARN, Context: cx}, c.policies, c.limits...)
		trust = iam.Authorize(&iam.Request{Action: "sts:TagSession", Principal: principal, Context: cx},
			iam.Set{Name: "trust", Policies: []*iam.Policy{role.Trust}})
	}
	if allowed.Effect != iam.Allow || trust.Effect != iam.Allow {
		reason := allowed.Reason
		if allowed.Effect == iam.Allow {
			reason = trust.Reason
		}
		if h.opts.Audit != nil {
			h.opts.Audit.Record(ctx, audit.Event{Component: "identity", Action: "sts:AssumeRole", Outcome: audit.Deny, Role: role.Name, Reason: reason, Sub: c.arn})
		}
		return nil, &stsError{http.StatusForbidden, "AccessDenied", "User: " + c.arn + " is not authorized to perform: sts:AssumeRole on resource: " + role.ARN}
	}
	exp := h.opts.Now().Add(dur)
	sess := sts.Session{Role: role.Name, SessionName: sessionName, Subject: c.arn, Provider: "sts", SessionPolicy: sessionPolicy, Expires: exp,
		Tags: tags, Transitive: transitive}
	if c.session != nil {
		sess.ActorChain = append([]string{c.arn}, c.session.ActorChain...)
	}
	creds, err := h.opts.STS.Issue(sess)
	if err != nil {
		return nil, err
	}
	if h.opts.Audit != nil {
		h.opts.Audit.Record(ctx, audit.Event{Component: "identity", Action: "sts:AssumeRole", Outcome: audit.Allow, Role: role.Name,
			Reason: allowed.Reason + "; " + trust.Reason, Sub: c.arn})
	}
	var out assumeRoleResponse
	out.NS = stsNS
	out.Result.Credentials = xmlCredentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey,
		SessionToken: creds.SessionToken, Expiration: exp.UTC().Format(time.RFC3339)}
	out.Result.AssumedRoleUser.Arn = h.opts.STS.AssumedRoleARN(role.Name, sessionName)
	out.Result.AssumedRoleUser.AssumedRoleID = "AROA" + strings.ToUpper(strings.ReplaceAll(role.Name, "-", "")) + ":" + sessionName
	out.Metadata.RequestID = audit.Request(ctx).ID
	return out, nil
}

// externalIDRE is what AssumeRole accepts as ExternalId (2 to 1224 of
// these).
var externalIDRE = regexp.MustCompile(`^[\w+=,.@:/-]+$`)

// tagKeyRE and tagValueRE are what a session tag key and value may hold
// (AWS: letters, digits, spaces and _.:/=+-@; a key 1-128 of them). A value
// with '*' or '?' would read as a wildcard where a policy names it.
var (
	tagKeyRE   = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)
	tagValueRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

// maxSessionTags bounds the session tags of one AssumeRole (AWS's limit).
const maxSessionTags = 50

// sessionTags reads AssumeRole's Tags.member.N.{Key,Value} and
// TransitiveTagKeys.member.N, and adds the transitive tags of the calling
// role session, which a request cannot change. It returns the session's
// tags and its transitive keys.
func (h *Handler) sessionTags(f url.Values, from *sts.Session) (map[string]string, []string, error) {
	tags := map[string]string{}
	lower := map[string]string{} // tag keys are unique regardless of case
	members := 0
	for k := range f {
		if strings.HasPrefix(k, "Tags.member.") && strings.HasSuffix(k, ".Key") {
			members++
		}
	}
	for i := 1; i <= members; i++ {
		k, hasKey := f["Tags.member."+strconv.Itoa(i)+".Key"]
		vs, hasValue := f["Tags.member."+strconv.Itoa(i)+".Value"]
		if !hasKey || !hasValue {
			return nil, nil, senderErr("ValidationError", "session tags are Tags.member.1 to N, each with a Key and a Value")
		}
		v := vs[0]
		if len(k) != 1 || len(vs) != 1 || !tagKeyRE.MatchString(k[0]) || strings.HasPrefix(strings.ToLower(k[0]), "aws:") ||
			utf8.RuneCountInString(v) > 256 || !tagValueRE.MatchString(v) {
			return nil, nil, senderErr("ValidationError", "a session tag key is 1 to 128 characters, its value at most 256, of letters, digits, spaces and _.:/=+-@ (keys not starting with aws:)")
		}
		if _, dup := lower[strings.ToLower(k[0])]; dup {
			return nil, nil, senderErr("InvalidParameterValue", "Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		tags[k[0]], lower[strings.ToLower(k[0])] = v, k[0]
	}
	var transitive []string
	for i := 1; ; i++ {
		k := f.Get("TransitiveTagKeys.member." + strconv.Itoa(i))
		if k == "" {
			break
		}
		key, ok := lower[strings.ToLower(k)]
		if !ok {
			return nil, nil, senderErr("InvalidParameterValue", "A transitive tag key must be one of the request's tags: "+truncate(k, 128))
		}
		if !slices.Contains(transitive, key) {
			transitive = append(transitive, key)
		}
	}
	if from != nil {
		for _, k := range from.Transitive {
			if _, dup := lower[strings.ToLower(k)]; dup {
				return nil, nil, senderErr("InvalidParameterValue", "A session tag cannot replace a transitive tag of the calling session: "+k)
			}
			tags[k], lower[strings.ToLower(k)] = from.Tags[k], k
			transitive = append(transitive, k)
		}
	}
	if len(tags) > maxSessionTags {
		return nil, nil, senderErr("PackedPolicyTooLarge", "Too many session tags: at most 50, transitive ones included.")
	}
	if len(tags) == 0 {
		return nil, nil, nil
	}
	return tags, transitive, nil
}
