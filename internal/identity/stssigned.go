package identity

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/writ-id/writ/internal/audit"
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
	"ExpiredToken":                      {"ExpiredToken", http.StatusBadRequest},
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
	return &caller{arn: sc.ARN, userID: sc.UserID, policies: sc.Sets[0], limits: sc.Sets[1:], session: sc.Session}, nil
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
	roleARN, sessionName := f.Get("RoleArn"), f.Get("RoleSessionName")
	if roleARN == "" || !sessionNameRE.MatchString(sessionName) {
		return nil, senderErr("ValidationError", "RoleArn and a RoleSessionName of 2 to 64 characters of [\\w+=,.@-] are required")
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
	var sessionPolicy json.RawMessage
	if p := f.Get("Policy"); p != "" {
		if _, err := iam.Parse([]byte(p)); err != nil {
			return nil, senderErr("MalformedPolicyDocument", err.Error())
		}
		sessionPolicy = json.RawMessage(p)
	}
	cx := iam.MapContext{}
	cx.Set("aws:SourceIp", sourceIP(r))
	cx.Set("aws:PrincipalArn", c.arn)
	cx.Set("aws:CurrentTime", h.opts.Now().UTC().Format(time.RFC3339))
	allowed := iam.Authorize(&iam.Request{Action: "sts:AssumeRole", Resource: role.ARN, Context: cx}, c.policies, c.limits...)
	trust := iam.Authorize(&iam.Request{Action: "sts:AssumeRole", Principal: &iam.Principal{Type: "AWS", ID: c.arn}, Context: cx},
		iam.Set{Name: "trust", Policies: []*iam.Policy{role.Trust}})
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
	sess := sts.Session{Role: role.Name, SessionName: sessionName, Subject: c.arn, Provider: "sts", SessionPolicy: sessionPolicy, Expires: exp}
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
