package cognito

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/writ-id/writ/internal/awsjson"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// Prefix is the Cognito IdP X-Amz-Target prefix.
const Prefix = "AWSCognitoIdentityProviderService"

// IDP serves the Cognito IdP JSON API.
type IDP struct {
	svc   *userpool.Service
	admin *Admin
}

// NewIDP returns the Cognito IdP API handler for svc. With admin set, the
// SigV4-signed Admin* operations are served too.
func NewIDP(svc *userpool.Service, admin *Admin, log *slog.Logger) http.Handler {
	a := &IDP{svc: svc, admin: admin}
	return &awsjson.Service{Prefix: Prefix, Log: log, Map: mapError, Ops: a.ops()}
}

// Operations names every operation NewIDP serves (X-Amz-Target
// <Prefix>.<name>), for metrics to label requests by.
func Operations() map[string]bool {
	names := map[string]bool{}
	for name := range (&IDP{}).ops() {
		names[name] = true
	}
	return names
}

// ops are the operations served, the Admin* ones included.
func (a *IDP) ops() map[string]awsjson.Op {
	ops := map[string]awsjson.Op{
		"SignUp":                 a.signUp,
		"ConfirmSignUp":          a.confirmSignUp,
		"ResendConfirmationCode": a.resendConfirmationCode,
		"InitiateAuth":           a.initiateAuth,
		"RespondToAuthChallenge": a.respondToAuthChallenge,
		"AssociateSoftwareToken": a.associateSoftwareToken,
		"VerifySoftwareToken":    a.verifySoftwareToken,
		"SetUserMFAPreference":   a.setUserMFAPreference,
		"GetUser":                a.getUser,
		"UpdateUserAttributes":   a.updateUserAttributes,
		"ChangePassword":         a.changePassword,
		"ForgotPassword":         a.forgotPassword,
		"ConfirmForgotPassword":  a.confirmForgotPassword,
		"GlobalSignOut":          a.globalSignOut,
		"RevokeToken":            a.revokeToken,

		"GetUserAttributeVerificationCode": a.getUserAttributeVerificationCode,
		"VerifyUserAttribute":              a.verifyUserAttribute,
		"DeleteUserAttributes":             a.deleteUserAttributes,
		"DeleteUser":                       a.deleteUser,
	}
	for name, op := range a.adminOps() {
		ops[name] = op
	}
	return ops
}

func mapError(err error) *awsjson.Error {
	var ue *userpool.Error
	if errors.As(err, &ue) {
		status := http.StatusBadRequest
		if ue.Code == userpool.CodeInternal {
			status = http.StatusInternalServerError
		}
		return &awsjson.Error{Status: status, Code: ue.Code, Message: ue.Message, Cause: ue.Cause}
	}
	return nil
}

func missing(field string) error {
	return awsjson.Errorf("InvalidParameterException", "1 validation error detected: Value at '"+field+"' failed to satisfy constraint: Member must not be null")
}

type attributeType struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

func toAttrs(in []attributeType) []userpool.Attribute {
	out := make([]userpool.Attribute, 0, len(in))
	for _, a := range in {
		out = append(out, userpool.Attribute{Name: a.Name, Value: a.Value})
	}
	return out
}

type codeDeliveryDetails struct {
	Destination    string `json:"Destination"`
	DeliveryMedium string `json:"DeliveryMedium"`
	AttributeName  string `json:"AttributeName"`
}

// firstMissing is the error for the first of the (name, value) pairs
// whose value is empty, nil when none is.
func firstMissing(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return missing(pairs[i])
		}
	}
	return nil
}

func delivery(d userpool.CodeDelivery) *codeDeliveryDetails {
	return &codeDeliveryDetails{Destination: d.Destination, DeliveryMedium: d.DeliveryMedium, AttributeName: d.AttributeName}
}

// client resolves ClientId to its pool.
func (a *IDP) client(ctx context.Context, clientID string) (*userpool.Pool, store.Client, error) {
	if clientID == "" {
		return nil, store.Client{}, missing("clientId")
	}
	if len(clientID) > 128 {
		return nil, store.Client{}, awsjson.Errorf("InvalidParameterException", "ClientId is too long")
	}
	return a.svc.ClientPool(ctx, clientID)
}

// tokenPool finds the pool of an access token.
func (a *IDP) tokenPool(accessToken string) (*userpool.Pool, error) {
	if accessToken == "" {
		return nil, missing("accessToken")
	}
	p, ok := a.svc.PoolForToken(accessToken)
	if !ok {
		return nil, awsjson.Errorf(userpool.CodeNotAuthorized, "Invalid Access Token")
	}
	return p, nil
}

func (a *IDP) signUp(ctx context.Context, r *http.Request, body []byte) (any, error) {
	var in struct {
		ClientId       string
		Username       string
		Password       string
		SecretHash     string
		UserAttributes []attributeType
	}
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.Username == "" {
		return nil, missing("username")
	}
	if in.Password == "" {
		return nil, missing("password")
	}
	p, c, err := a.client(ctx, in.ClientId)
	if err != nil {
		return nil, err
	}
	u, d, err := p.SignUp(ctx, c, in.Username, in.Password, in.SecretHash, toAttrs(in.UserAttributes), awsjson.SourceIP(r))
	if err != nil {
		return nil, err
	}
	out := map[string]any{"UserConfirmed": false, "UserSub": u.Sub}
	if d.Destination != "" { // none without an address: no code went anywhere
		out["CodeDeliveryDetails"] = delivery(d)
	}
	return out, nil
}

func (a *IDP) confirmSignUp(ctx context.Context, r *http.Request, body []byte) (any, error) {
	var in struct {
		ClientId, Username, ConfirmationCode, SecretHash string
	}
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := firstMissing("username", in.Username, "confirmationCode", in.ConfirmationCode); err != nil {
		return nil, err
	}
	p, c, err := a.client(ctx, in.ClientId)
	if err != nil {
		return nil, err
	}
	if err := p.ConfirmSignUp(ctx, c, in.Username, in.ConfirmationCode, in.SecretHash, awsjson.SourceIP(r)); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (a *IDP) resendConfirmationCode(ctx context.Context, r *http.Request, body []byte) (any, error) {
	var in struct{ ClientId, Username, SecretHash string }
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.Username == "" {
		return nil, missing("username")
	}
	p, c, err := a.client(ctx, in.ClientId)
	if err != nil {
		return nil, err
	}
	d, err := p.ResendConfirmationCode(ctx, c, in.Username, in.SecretHash, awsjson.SourceIP(r))
	if err != nil {
		return nil, err
	}
	if d.Destination == "" { // no address: no code went anywhere
		return struct{}{}, nil
	}
	return map[string]any{"CodeDeliveryDetails": delivery(d)}, nil
}

func authResult(res userpool.Result) any {
	out := map[string]any{"ChallengeParameters": map[string]string{}}
	if res.Tokens != nil {
		ar := map[string]any{
			"AccessToken": res.Tokens.AccessToken,
			"ExpiresIn":   res.Tokens.ExpiresIn,
			"TokenType":   res.Tokens.TokenType,
			"IdToken":     res.Tokens.IDToken,
		}
		if res.Tokens.RefreshToken != "" {
			ar["RefreshToken"] = res.Tokens.RefreshToken
		}
		out["AuthenticationResult"] = ar
		return out
	}
	out["ChallengeName"] = res.Challenge
	out["Session"] = res.Session
	out["ChallengeParameters"] = res.Params
	return out
}

func (a *IDP) initiateAuth(ctx context.Context, r *http.Request, body []byte) (any, error) {
	var in struct {
		AuthFlow       string
		ClientId       string
		AuthParameters map[string]string
	}
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.AuthFlow == "" {
		return nil, missing("authFlow")
	}
	p, c, err := a.client(ctx, in.ClientId)
	if err != nil {
		return nil, err
	}
	ap := in.AuthParameters
	switch in.AuthFlow {
	case "USER_PASSWORD_AUTH":
		if !userpool.HasFlow(c, "user_password") {
			return nil, awsjson.Errorf("InvalidParameterException", "USER_PASSWORD_AUTH flow not enabled for this client")
		}
		res, err := p.PasswordAuth(ctx, c, ap["USERNAME"], ap["PASSWORD"], ap["SECRET_HASH"], awsjson.SourceIP(r))
		if err != nil {
			return nil, err
		}
		return authResult(res), nil
	case "REFRESH_TOKEN_AUTH", "REFRESH_TOKEN":
		return refreshAuth(ctx, p, c, ap)
	case "USER_SRP_AUTH", "CUSTOM_AUTH", "USER_AUTH":
		return nil, awsjson.Errorf("InvalidParameterException", in.AuthFlow+" flow not enabled for this client")
	case "ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH":
		return nil, awsjson.Errorf("InvalidParameterException", "Initiate Auth method not supported.") // AdminInitiateAuth's
	default:
		return nil, awsjson.Errorf("InvalidParameterException", "Unknown AuthFlow "+truncate(in.AuthFlow, 40))
	}
}

// challengeRequest is the body of RespondToAuthChallenge and
// AdminRespondToAuthChallenge (which also names the pool).
type challengeRequest struct {
	ClientId           string
	ChallengeName      string
	Session            string
	ChallengeResponses map[string]string
}

// refreshAuth serves REFRESH_TOKEN_AUTH (InitiateAuth and
// AdminInitiateAuth alike): new tokens for the refresh token in ap, for
// client c.
func refreshAuth(ctx context.Context, p *userpool.Pool, c store.Client, ap map[string]string) (any, error) {
	if !userpool.HasFlow(c, "refresh_token") {
		return nil, awsjson.Errorf("InvalidParameterException", "REFRESH_TOKEN_AUTH flow not enabled for this client")
	}
	rt := ap["REFRESH_TOKEN"]
	if rt == "" {
		return nil, missing("authParameters.REFRESH_TOKEN")
	}
	if !c.Public && len(c.SecretHash) > 0 {
		username, sub, _ := p.RefreshOwner(ctx, rt)
		if err := p.CheckSecretHash(c, ap["SECRET_HASH"], username, sub); err != nil {
			return nil, err
		}
	}
	t, err := p.Refresh(ctx, c, rt)
	if err != nil {
		return nil, err
	}
	return authResult(userpool.Result{Tokens: &t}), nil
}

func decodeChallenge(body []byte) (challengeRequest, error) {
	var in challengeRequest
	if err := awsjson.Decode(body, &in); err != nil {
		return in, err
	}
	if in.ChallengeName == "" {
		return in, missing("challengeName")
	}
	return in, nil
}

func (a *IDP) respondToAuthChallenge(ctx context.Context, r *http.Request, body []byte) (any, error) {
	in, err := decodeChallenge(body)
	if err != nil {
		return nil, err
	}
	p, c, err := a.client(ctx, in.ClientId)
	if err != nil {
		return nil, err
	}
	res, err := p.Respond(ctx, c, in.ChallengeName, in.Session, in.ChallengeResponses, awsjson.SourceIP(r))
	if err != nil {
		return nil, err
	}
	return authResult(res), nil
}

// sessionOrTokenPool finds the pool from an access token or a session.
func (a *IDP) sessionOrTokenPool(ctx context.Context, accessToken, session string) (*userpool.Pool, error) {
	if accessToken != "" {
		return a.tokenPool(accessToken)
	}
	if session == "" {
		return nil, awsjson.Errorf("InvalidParameterException", "AccessToken or Session is required")
	}
	p, ok := a.svc.SessionPool(ctx, session)
	if !ok {
		return nil, awsjson.Errorf(userpool.CodeNotAuthorized, "Invalid session for the user, session is expired.")
	}
	return p, nil
}

func (a *IDP) associateSoftwareToken(ctx context.Context, r *http.Request, body []byte) (any, error) {
	var in struct{ AccessToken, Session string }
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	p, err := a.sessionOrTokenPool(ctx, in.AccessToken, in.Session)
	if err != nil {
		return nil, err
	}
	secret, next, err := p.AssociateSoftwareToken(ctx, in.AccessToken, in.Session)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"SecretCode": secret}
	if next != "" {
		out["Session"] = next
	}
	return out, nil
}

func (a *IDP) verifySoftwareToken(ctx context.Context, r *http.Request, body []byte) (any, error) {
	var in struct{ AccessToken, Session, UserCode, FriendlyDeviceName string }
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.UserCode == "" {
		return nil, missing("userCode")
	}
	p, err := a.sessionOrTokenPool(ctx, in.AccessToken, in.Session)
	if err != nil {
		return nil, err
	}
	next, err := p.VerifySoftwareToken(ctx, in.AccessToken, in.Session, in.UserCode)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"Status": "SUCCESS"}
	if next != "" {
		out["Session"] = next
	}
	return out, nil
}

type mfaSettings struct {
	Enabled      *bool
	PreferredMfa *bool
}

// mfaPreference is the factor settings of SetUserMFAPreference and
// AdminSetUserMFAPreference.
type mfaPreference struct {
	SoftwareTokenMfaSettings *mfaSettings
	SMSMfaSettings           *mfaSettings
	EmailMfaSettings         *mfaSettings
	WebAuthnMfaSettings      *mfaSettings
}

// totp returns the TOTP preference asked for (nil: leave as it is). A
// settings object given sets both of its members, a member left out being
// false, the API model's default: the SDKs leave out a false member (the
// Go SDK v2 sends {Enabled: false} as {}), so a missing one cannot mean
// "unchanged". TOTP is writ's only factor, so turning any other on is
// refused rather than ignored: the caller would believe it in force.
func (m mfaPreference) totp() (enabled, preferred *bool, err error) {
	for _, s := range []*mfaSettings{m.SMSMfaSettings, m.EmailMfaSettings, m.WebAuthnMfaSettings} {
		if s != nil && ((s.Enabled != nil && *s.Enabled) || (s.PreferredMfa != nil && *s.PreferredMfa)) {
			return nil, nil, awsjson.Errorf("InvalidParameterException", "Only software token (TOTP) MFA is supported")
		}
	}
	s := m.SoftwareTokenMfaSettings
	if s == nil {
		return nil, nil, nil
	}
	on, pref := s.Enabled != nil && *s.Enabled, s.PreferredMfa != nil && *s.PreferredMfa
	return &on, &pref, nil
}

func (a *IDP) setUserMFAPreference(ctx context.Context, r *http.Request, body []byte) (any, error) {
	type input struct {
		tokenInput
		mfaPreference
	}
	return withToken(a, body, nil, func(p *userpool.Pool, in *input) (any, error) {
		enabled, preferred, err := in.totp()
		if err != nil {
			return nil, err
		}
		return struct{}{}, p.SetMFAPreference(ctx, in.AccessToken, enabled, preferred)
	})
}

func (a *IDP) getUser(ctx context.Context, r *http.Request, body []byte) (any, error) {
	return withToken(a, body, nil, func(p *userpool.Pool, in *tokenInput) (any, error) {
		_, u, err := p.AccessUser(ctx, in.AccessToken)
		if err != nil {
			return nil, err
		}
		return userOutput(u), nil
	})
}

// userOutput is GetUser's answer for u.
func userOutput(u store.User) any {
	attrs := []attributeType{}
	for _, at := range userpool.Attributes(u) {
		attrs = append(attrs, attributeType{Name: at.Name, Value: at.Value})
	}
	out := map[string]any{"Username": u.Username, "UserAttributes": attrs}
	if u.TOTPEnabled {
		out["UserMFASettingList"] = []string{"SOFTWARE_TOKEN_MFA"}
		if u.MFAPreferred {
			out["PreferredMfaSetting"] = "SOFTWARE_TOKEN_MFA"
		}
	}
	return out
}

func (a *IDP) updateUserAttributes(ctx context.Context, r *http.Request, body []byte) (any, error) {
	type input struct {
		tokenInput
		UserAttributes []attributeType
	}
	check := func(in *input) error { return required(in.UserAttributes == nil, "userAttributes") }
	return withToken(a, body, check, func(p *userpool.Pool, in *input) (any, error) {
		ds, err := p.UpdateAttributes(ctx, in.AccessToken, toAttrs(in.UserAttributes), awsjson.SourceIP(r))
		if err != nil {
			return nil, err
		}
		list := []*codeDeliveryDetails{}
		for _, d := range ds {
			list = append(list, delivery(d))
		}
		return map[string]any{"CodeDeliveryDetailsList": list}, nil
	})
}

func (a *IDP) getUserAttributeVerificationCode(ctx context.Context, r *http.Request, body []byte) (any, error) {
	type input struct {
		tokenInput
		AttributeName string
	}
	check := func(in *input) error { return required(in.AttributeName == "", "attributeName") }
	return withToken(a, body, check, func(p *userpool.Pool, in *input) (any, error) {
		d, err := p.GetAttributeVerificationCode(ctx, in.AccessToken, in.AttributeName, awsjson.SourceIP(r))
		if err != nil {
			return nil, err
		}
		return map[string]any{"CodeDeliveryDetails": delivery(d)}, nil
	})
}

func (a *IDP) verifyUserAttribute(ctx context.Context, r *http.Request, body []byte) (any, error) {
	type input struct {
		tokenInput
		AttributeName, Code string
	}
	check := func(in *input) error {
		if in.AttributeName == "" {
			return missing("attributeName")
		}
		return required(in.Code == "", "code")
	}
	return withToken(a, body, check, func(p *userpool.Pool, in *input) (any, error) {
		return struct{}{}, p.VerifyAttribute(ctx, in.AccessToken, in.AttributeName, in.Code, awsjson.SourceIP(r))
	})
}

func (a *IDP) deleteUserAttributes(ctx context.Context, r *http.Request, body []byte) (any, error) {
	type input struct {
		tokenInput
		UserAttributeNames []string
	}
	check := func(in *input) error { return required(in.UserAttributeNames == nil, "userAttributeNames") }
	return withToken(a, body, check, func(p *userpool.Pool, in *input) (any, error) {
		return struct{}{}, p.DeleteAttributes(ctx, in.AccessToken, in.UserAttributeNames)
	})
}

// tokenInput is the AccessToken member of an operation's input, which
// withToken reads.
type tokenInput struct{ AccessToken string }

func (t *tokenInput) token() string { return t.AccessToken }

// withToken serves an operation called with an access token: it decodes
// the input (an In, embedding tokenInput), checks its other required
// members (check; nil when there are none), finds the token's pool and
// runs op there. An op's error is the answer; its result is only when the
// error is nil.
func withToken[In any, P interface {
	*In
	token() string
}](a *IDP, body []byte, check func(*In) error, op func(p *userpool.Pool, in *In) (any, error)) (any, error) {
	in := new(In)
	if err := awsjson.Decode(body, in); err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(in); err != nil {
			return nil, err
		}
	}
	p, err := a.tokenPool(P(in).token())
	if err != nil {
		return nil, err
	}
	out, err := op(p, in)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// required is the error for a required member left out (missing) when
// absent, else nil.
func required(absent bool, field string) error {
	if absent {
		return missing(field)
	}
	return nil
}

func (a *IDP) deleteUser(ctx context.Context, r *http.Request, body []byte) (any, error) {
	return withToken(a, body, nil, func(p *userpool.Pool, in *tokenInput) (any, error) {
		return struct{}{}, p.DeleteSelf(ctx, in.AccessToken)
	})
}

func (a *IDP) changePassword(ctx context.Context, r *http.Request, body []byte) (any, error) {
	type input struct {
		tokenInput
		PreviousPassword, ProposedPassword string
	}
	check := func(in *input) error { return required(in.ProposedPassword == "", "proposedPassword") }
	return withToken(a, body, check, func(p *userpool.Pool, in *input) (any, error) {
		return struct{}{}, p.ChangePassword(ctx, in.AccessToken, in.PreviousPassword, in.ProposedPassword)
	})
}

func (a *IDP) forgotPassword(ctx context.Context, r *http.Request, body []byte) (any, error) {
	var in struct{ ClientId, Username, SecretHash string }
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.Username == "" {
		return nil, missing("username")
	}
	p, c, err := a.client(ctx, in.ClientId)
	if err != nil {
		return nil, err
	}
	d, err := p.ForgotPassword(ctx, c, in.Username, in.SecretHash, awsjson.SourceIP(r))
	if err != nil {
		return nil, err
	}
	return map[string]any{"CodeDeliveryDetails": delivery(d)}, nil
}

func (a *IDP) confirmForgotPassword(ctx context.Context, r *http.Request, body []byte) (any, error) {
	var in struct{ ClientId, Username, ConfirmationCode, Password, SecretHash string }
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := firstMissing("username", in.Username, "confirmationCode", in.ConfirmationCode, "password", in.Password); err != nil {
		return nil, err
	}
	p, c, err := a.client(ctx, in.ClientId)
	if err != nil {
		return nil, err
	}
	if err := p.ConfirmForgotPassword(ctx, c, in.Username, in.ConfirmationCode, in.Password, in.SecretHash, awsjson.SourceIP(r)); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (a *IDP) globalSignOut(ctx context.Context, r *http.Request, body []byte) (any, error) {
	return withToken(a, body, nil, func(p *userpool.Pool, in *tokenInput) (any, error) {
		return struct{}{}, p.GlobalSignOut(ctx, in.AccessToken)
	})
}

func (a *IDP) revokeToken(ctx context.Context, r *http.Request, body []byte) (any, error) {
	var in struct{ Token, ClientId, ClientSecret string }
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.Token == "" {
		return nil, missing("token")
	}
	if strings.Count(in.Token, ".") == 2 {
		return nil, awsjson.Errorf(userpool.CodeUnsupportedTokenType, "Only refresh tokens can be revoked")
	}
	p, c, err := a.client(ctx, in.ClientId)
	if err != nil {
		return nil, err
	}
	// Refusals are UnauthorizedException, the error RevokeToken declares
	// (the SDK gives it its own type), not NotAuthorizedException.
	if !c.Public && !a.svc.CheckClientSecret(c, in.ClientSecret) {
		return nil, awsjson.Errorf(userpool.CodeUnauthorized, "Client authentication failed")
	}
	if err := p.RevokeRefresh(ctx, c, in.Token); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
