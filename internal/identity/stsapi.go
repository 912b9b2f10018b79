package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/awsjson"
	"github.com/writ-id/writ/internal/iam"
	"github.com/writ-id/writ/internal/sts"
	"github.com/writ-id/writ/internal/token"
)

const stsNS = "https://sts.amazonaws.com/doc/2011-06-15/"

// stsError is an STS error (query protocol, XML body).
type stsError struct {
	status  int
	code    string
	message string
}

func (e *stsError) Error() string { return "sts: " + e.code + ": " + e.message }

func senderErr(code, msg string) *stsError { return &stsError{http.StatusBadRequest, code, msg} }

func (h *Handler) serveSTS(w http.ResponseWriter, r *http.Request) {
	reqID := awsjson.RequestID(r)
	ctx := audit.WithRequest(r.Context(), audit.RequestInfo{ID: reqID, SourceIP: awsjson.SourceIP(r), TraceID: awsjson.TraceID(r.Header.Get("traceparent"))})
	w.Header().Set("x-amzn-RequestId", reqID)
	// Read the body once for both the signature (its hash) and the form.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeSTSError(w, reqID, senderErr("InvalidParameterValue", "the request body could not be read"))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := r.ParseForm(); err != nil {
		writeSTSError(w, reqID, senderErr("InvalidParameterValue", "the request body could not be read"))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var out any
	switch r.Form.Get("Action") {
	case "AssumeRoleWithWebIdentity":
		out, err = h.assumeRoleWithWebIdentity(ctx, r)
	case "GetCallerIdentity":
		out, err = h.getCallerIdentity(ctx, r)
	case "AssumeRole":
		out, err = h.assumeRole(ctx, r)
	case "":
		err = senderErr("MissingAction", "Action is required")
	default:
		err = senderErr("InvalidAction", "Action "+truncate(r.Form.Get("Action"), 64)+" is not valid for this endpoint")
	}
	if err != nil {
		se, ok := err.(*stsError)
		if !ok {
			h.opts.Log.Error("sts: internal error", "request_id", reqID, "err", err)
			se = &stsError{http.StatusInternalServerError, "InternalFailure", "Internal error (request id " + reqID + ")"}
		}
		writeSTSError(w, reqID, se)
		return
	}
	b, _ := xml.Marshal(out)
	w.Header().Set("Content-Type", "text/xml")
	w.Write([]byte(xml.Header))
	w.Write(b)
}

func writeSTSError(w http.ResponseWriter, reqID string, e *stsError) {
	type errBody struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	v := struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		NS        string   `xml:"xmlns,attr"`
		Error     errBody  `xml:"Error"`
		RequestID string   `xml:"RequestId"`
	}{NS: stsNS, Error: errBody{Type: "Sender", Code: e.code, Message: e.message}, RequestID: reqID}
	if e.status >= 500 {
		v.Error.Type = "Receiver"
	}
	b, _ := xml.Marshal(v)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}

type xmlCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumeRoleWithWebIdentityResponse struct {
	XMLName xml.Name `xml:"AssumeRoleWithWebIdentityResponse"`
	NS      string   `xml:"xmlns,attr"`
	Result  struct {
		Credentials                 xmlCredentials `xml:"Credentials"`
		SubjectFromWebIdentityToken string         `xml:"SubjectFromWebIdentityToken"`
		AssumedRoleUser             struct {
			Arn           string `xml:"Arn"`
			AssumedRoleID string `xml:"AssumedRoleId"`
		} `xml:"AssumedRoleUser"`
		Provider string `xml:"Provider"`
		Audience string `xml:"Audience"`
	} `xml:"AssumeRoleWithWebIdentityResult"`
	Metadata struct {
		RequestID string `xml:"RequestId"`
	} `xml:"ResponseMetadata"`
}

var sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// maxSessionPolicy is the longest session policy STS takes (characters).
const maxSessionPolicy = 2048

// unsupportedParams refuses the AssumeRole* parameters writ does not
// implement and would otherwise drop without a word, each of which a
// caller sends to get less than the role allows or to be held to more:
// managed session policies (PolicyArns: writ has no managed policies; the
// inline Policy narrows a session), SourceIdentity and ProvidedContexts.
func unsupportedParams(f url.Values) error {
	for k := range f {
		name, _, _ := strings.Cut(k, ".")
		switch name {
		case "PolicyArns":
			return senderErr("ValidationError", "PolicyArns is not supported by writ: it has no managed policies; pass the session policy inline (Policy)")
		case "SourceIdentity", "ProvidedContexts":
			return senderErr("ValidationError", name+" is not supported by writ")
		}
	}
	return nil
}

// sessionPolicyOf checks an AssumeRole* Policy parameter: at most 2048
// characters of a valid policy ("" is none).
func sessionPolicyOf(p string) (json.RawMessage, error) {
	switch {
	case p == "":
		return nil, nil
	case utf8.RuneCountInString(p) > maxSessionPolicy:
		return nil, senderErr("ValidationError", "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to 2048")
	}
	if _, err := iam.Parse([]byte(p)); err != nil {
		return nil, senderErr("MalformedPolicyDocument", err.Error())
	}
	return json.RawMessage(p), nil
}

// arnPattern is the pattern of STS's arnType (API model), as AWS quotes it.
const arnPattern = `[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+`

var arnCharsRE = regexp.MustCompile(`^[\x{9}\x{A}\x{D}\x{20}-\x{7E}\x{85}\x{A0}-\x{D7FF}\x{E000}-\x{FFFD}\x{10000}-\x{10FFFF}]+$`)

// validRoleARN checks an AssumeRole* RoleArn before the role is looked
// up: 20 to 2048 characters of arnType's pattern (the API model's
// constraints, with AWS's messages), and of the form
// arn:partition:service:region:account:resource. A bare role name, which
// sts.Service.Role also resolves (for the configuration's role
// references), never reaches the lookup.
func validRoleARN(arn string) error {
	const prefix = "1 validation error detected: Value "
	switch n := utf8.RuneCountInString(arn); {
	case n < 20:
		return senderErr("ValidationError", prefix+"'"+arn+"' at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20")
	case n > 2048:
		return senderErr("ValidationError", prefix+"at 'roleArn' failed to satisfy constraint: Member must have length less than or equal to 2048")
	case !utf8.ValidString(arn) || !arnCharsRE.MatchString(arn):
		return senderErr("ValidationError", prefix+"at 'roleArn' failed to satisfy constraint: Member must satisfy regular expression pattern: "+arnPattern)
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] == "" || parts[5] == "" {
		return senderErr("ValidationError", "Request ARN is invalid")
	}
	return nil
}

func (h *Handler) assumeRoleWithWebIdentity(ctx context.Context, r *http.Request) (any, error) {
	f := r.Form
	if err := unsupportedParams(f); err != nil {
		return nil, err
	}
	roleARN, sessionName, raw := f.Get("RoleArn"), f.Get("RoleSessionName"), f.Get("WebIdentityToken")
	if roleARN == "" || sessionName == "" || raw == "" {
		return nil, senderErr("ValidationError", "RoleArn, RoleSessionName and WebIdentityToken are required")
	}
	if err := validRoleARN(roleARN); err != nil {
		return nil, err
	}
	if !sessionNameRE.MatchString(sessionName) {
		return nil, senderErr("ValidationError", "RoleSessionName must be 2 to 64 characters of [\\w+=,.@-]")
	}
	dur := time.Hour
	if s := f.Get("DurationSeconds"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 900 {
			return nil, senderErr("ValidationError", "DurationSeconds must be at least 900")
		}
		dur = time.Duration(n) * time.Second
	}
	role, ok := h.opts.STS.Role(roleARN)
	if !ok {
		h.recordSTS(ctx, roleARN, nil, "no such role")
		return nil, &stsError{http.StatusForbidden, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"}
	}
	if dur > role.MaxSession {
		return nil, senderErr("ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	sessionPolicy, err := sessionPolicyOf(f.Get("Policy"))
	if err != nil {
		return nil, err
	}
	// Verify the token with its issuer's keys.
	iss, _ := token.UnverifiedIssuer(raw)
	iss = strings.TrimRight(iss, "/")
	v := h.verifiers[iss]
	provider := providerKey(iss)
	federated := "arn:aws:iam::" + h.opts.STS.Account() + ":oidc-provider/" + provider
	var clientIDs []string
	if iss == h.issuer {
		v, provider, federated = h.own, CognitoProvider, CognitoProvider
	} else {
		known := false
		for _, p := range h.cfg.IAM.OIDCProviders {
			if strings.TrimRight(p.URL, "/") == iss {
				known, clientIDs = true, p.ClientIDs
			}
		}
		if !known || v == nil {
			return nil, senderErr("InvalidIdentityToken", "No OpenIDConnect provider found in your account for "+truncate(iss, 100))
		}
	}
	c, err := v.Verify(ctx, raw)
	if err != nil {
		h.recordSTS(ctx, role.Name, nil, "token: "+err.Error())
		// The SDK's typed errors: a token file that expired is not worth
		// retrying (stscreds retries InvalidIdentityToken), and an issuer
		// that cannot be reached is (IDPCommunicationError).
		switch {
		case errors.Is(err, token.ErrExpired):
			return nil, senderErr("ExpiredTokenException", "Token expired: the web identity token is past its expiration time")
		case errors.Is(err, token.ErrKeysUnavailable):
			return nil, senderErr("IDPCommunicationError", "Couldn't retrieve verification key from your identity provider")
		}
		return nil, senderErr("InvalidIdentityToken", "The web identity token could not be verified: "+describe(err))
	}
	aud := c.ClientID
	if len(c.Audience) > 0 {
		aud = c.Audience[0]
	}
	if clientIDs != nil && !contains(clientIDs, aud) {
		return nil, senderErr("InvalidIdentityToken", "Incorrect token audience")
	}
	cx := iam.MapContext{}
	cx.Set(provider+":sub", c.Subject)
	cx.Set(provider+":aud", aud)
	if len(c.AMR) > 0 {
		cx.Set(provider+":amr", c.AMR...)
	}
	cx.Set("aws:SourceIp", awsjson.SourceIP(r))
	cx.Set("aws:CurrentTime", h.opts.Now().UTC().Format(time.RFC3339))
	d := iam.Authorize(&iam.Request{Action: "sts:AssumeRoleWithWebIdentity", Principal: &iam.Principal{Type: "Federated", ID: federated},
		Context: cx}, iam.Set{Name: "trust", Policies: []*iam.Policy{role.Trust}})
	if d.Effect != iam.Allow {
		h.recordSTS(ctx, role.Name, c, d.Reason)
		return nil, &stsError{http.StatusForbidden, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"}
	}
	exp := h.opts.Now().Add(dur)
	creds, err := h.opts.STS.Issue(sts.Session{Role: role.Name, SessionName: sessionName, Subject: c.Subject, Provider: provider,
		Audience: aud, AMR: c.AMR, SessionPolicy: sessionPolicy, ActorChain: c.Act.Chain(), Expires: exp})
	if err != nil {
		return nil, err
	}
	if h.opts.Audit != nil {
		h.opts.Audit.Record(ctx, audit.Event{Component: "identity", Action: "sts:AssumeRoleWithWebIdentity", Outcome: audit.Allow,
			Reason: d.Reason, Sub: c.Subject, Role: role.Name, ActorChain: c.Act.Chain(), Resource: role.ARN})
	}
	var out assumeRoleWithWebIdentityResponse
	out.NS = stsNS
	out.Result.Credentials = xmlCredentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey,
		SessionToken: creds.SessionToken, Expiration: exp.UTC().Format(time.RFC3339)}
	out.Result.SubjectFromWebIdentityToken = c.Subject
	out.Result.AssumedRoleUser.Arn = h.opts.STS.AssumedRoleARN(role.Name, sessionName)
	out.Result.AssumedRoleUser.AssumedRoleID = "AROA" + strings.ToUpper(strings.ReplaceAll(role.Name, "-", "")) + ":" + sessionName
	out.Result.Provider = provider
	out.Result.Audience = aud
	out.Metadata.RequestID = audit.Request(ctx).ID
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (h *Handler) recordSTS(ctx context.Context, role string, c *token.Claims, reason string) {
	if h.opts.Audit == nil {
		return
	}
	e := audit.Event{Component: "identity", Action: "sts:AssumeRoleWithWebIdentity", Outcome: audit.Deny, Role: role, Reason: reason}
	if c != nil {
		e.Sub = c.Subject
	}
	h.opts.Audit.Record(ctx, e)
}
