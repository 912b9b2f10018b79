package cognito

import (
	"context"
	"errors"
	"net/http"

	"github.com/writ-id/writ/internal/awsjson"
	"github.com/writ-id/writ/internal/iam"
	"github.com/writ-id/writ/internal/sigv4"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/sts"
	"github.com/writ-id/writ/internal/userpool"
)

// Admin authenticates and authorizes the SigV4-signed admin operations.
type Admin struct {
	Verifier *sigv4.Verifier
	STS      *sts.Service
	Region   string
	Account  string
}

// jsonCodes maps verifier codes to the AWS JSON protocol's.
var jsonCodes = map[string]string{
	"MissingAuthenticationToken":   "MissingAuthenticationTokenException",
	"IncompleteSignature":          "IncompleteSignatureException",
	"AuthorizationHeaderMalformed": "IncompleteSignatureException",
	"InvalidAccessKeyId":           "UnrecognizedClientException",
	"InvalidClientTokenId":         "UnrecognizedClientException",
	"InvalidToken":                 "UnrecognizedClientException",
	"ExpiredToken":                 "ExpiredTokenException",
	"SignatureDoesNotMatch":        "InvalidSignatureException",
	"RequestTimeTooSkewed":         "InvalidSignatureException",
}

// authorize checks the signature and that the caller's policies allow
// cognito-idp:<op> on the pool, and returns the caller. An unsigned call is
// refused even though the SDK sends admin calls unsigned when it has no
// credentials.
func (a *IDP) authorize(r *http.Request, op, poolID string) (*sts.Caller, error) {
	if a.admin == nil {
		return nil, awsjson.Errorf("UnknownOperationException", "admin operations are not enabled on this listener")
	}
	res, err := a.admin.Verifier.Verify(r)
	if err != nil {
		var e *sigv4.Error
		if errors.As(err, &e) {
			code := jsonCodes[e.Code]
			if code == "" {
				code = "IncompleteSignatureException"
			}
			return nil, &awsjson.Error{Status: http.StatusBadRequest, Code: code, Message: e.Message}
		}
		return nil, err
	}
	c, ok := a.admin.STS.CallerOf(res.Credentials.Principal)
	if !ok {
		return nil, awsjson.Errorf("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	c.Context.Set("aws:SourceIp", awsjson.SourceIP(r))
	if err := allow(c, "cognito-idp:"+op, "arn:aws:cognito-idp:"+a.admin.Region+":"+a.admin.Account+":userpool/"+poolID); err != nil {
		return nil, err
	}
	return c, nil
}

// allow checks that c's policies allow action on resource
// (AccessDeniedException otherwise, naming both).
func allow(c *sts.Caller, action, resource string) error {
	d := iam.Authorize(&iam.Request{Action: action, Resource: resource, Context: c.Context}, c.Sets[0], c.Sets[1:]...)
	if d.Effect != iam.Allow {
		return &awsjson.Error{Status: http.StatusBadRequest, Code: "AccessDeniedException",
			Message: "User: " + c.ARN + " is not authorized to perform: " + action + " on resource: " + resource, Cause: errors.New(d.Reason)}
	}
	return nil
}

type callerKey struct{}

// mayPassRole checks that the caller of an admin operation (adminOp put it
// in ctx) may also iam:PassRole the role ARN it gives a group: a group's
// role reaches its members' ID tokens, and through an identity pool their
// credentials, so choosing it is granting it.
func mayPassRole(ctx context.Context, roleARN string) error {
	if roleARN == "" {
		return nil // no role given (or the group's taken away): nothing passed
	}
	c, _ := ctx.Value(callerKey{}).(*sts.Caller)
	if c == nil {
		return awsjson.Errorf("AccessDeniedException", "no caller to authorize iam:PassRole")
	}
	c.Context.Set("iam:PassedToService", "cognito-idp.amazonaws.com") // the request's own caller: no other check follows
	return allow(c, "iam:PassRole", roleARN)
}

// adminOp wraps an admin operation: decode UserPoolId, authorize, run.
func (a *IDP) adminOp(op string, run func(ctx context.Context, p *userpool.Pool, body []byte) (any, error)) awsjson.Op {
	return func(ctx context.Context, r *http.Request, body []byte) (any, error) {
		var in struct{ UserPoolId string }
		if err := awsjson.Decode(body, &in); err != nil {
			return nil, err
		}
		c, err := a.authorize(r, op, in.UserPoolId)
		if err != nil {
			return nil, err
		}
		ctx = context.WithValue(ctx, callerKey{}, c)
		p, ok := a.svc.Pool(in.UserPoolId)
		if !ok {
			return nil, awsjson.Errorf("ResourceNotFoundException", "User pool "+truncate(in.UserPoolId, 60)+" does not exist.")
		}
		return run(ctx, p, body)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func userType(u store.User, attrsKey string) map[string]any {
	attrs := []attributeType{}
	for _, at := range userpool.Attributes(u) {
		attrs = append(attrs, attributeType{Name: at.Name, Value: at.Value})
	}
	return map[string]any{"Username": u.Username, attrsKey: attrs, "UserCreateDate": u.CreatedAt.Unix(),
		"UserLastModifiedDate": u.UpdatedAt.Unix(), "Enabled": u.Enabled, "UserStatus": u.Status}
}

func (a *IDP) adminOps() map[string]awsjson.Op {
	type userIn struct{ Username string }
	decodeUser := func(body []byte) (string, error) {
		var in userIn
		if err := awsjson.Decode(body, &in); err != nil {
			return "", err
		}
		if in.Username == "" {
			return "", missing("username")
		}
		return in.Username, nil
	}
	simple := func(op string, fn func(*store.User) error) awsjson.Op {
		return a.adminOp(op, func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			name, err := decodeUser(body)
			if err != nil {
				return nil, err
			}
			if _, err := p.AdminUpdate(ctx, op, name, fn); err != nil {
				return nil, err
			}
			return struct{}{}, nil
		})
	}
	return map[string]awsjson.Op{
		"AdminCreateUser": a.adminOp("AdminCreateUser", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			var in struct {
				Username          string
				UserAttributes    []attributeType
				TemporaryPassword string
				MessageAction     string
			}
			if err := awsjson.Decode(body, &in); err != nil {
				return nil, err
			}
			if in.Username == "" {
				return nil, missing("username")
			}
			var (
				u   store.User
				err error
			)
			switch in.MessageAction {
			case "", "SUPPRESS":
				u, err = p.AdminCreateUser(ctx, in.Username, in.TemporaryPassword, toAttrs(in.UserAttributes), in.MessageAction == "SUPPRESS")
			case "RESEND":
				u, err = p.AdminResendInvitation(ctx, in.Username, in.TemporaryPassword)
			default:
				return nil, awsjson.Errorf("InvalidParameterException", "1 validation error detected: Value '"+truncate(in.MessageAction, 40)+
					"' at 'messageAction' failed to satisfy constraint: Member must satisfy enum value set: [RESEND, SUPPRESS]")
			}
			if err != nil {
				return nil, err
			}
			return map[string]any{"User": userType(u, "Attributes")}, nil
		}),
		"AdminGetUser": a.adminOp("AdminGetUser", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			name, err := decodeUser(body)
			if err != nil {
				return nil, err
			}
			u, err := p.AdminGetUser(ctx, name)
			if err != nil {
				return nil, err
			}
			out := userType(u, "UserAttributes")
			if u.TOTPEnabled {
				out["UserMFASettingList"] = []string{"SOFTWARE_TOKEN_MFA"}
				if u.MFAPreferred {
					out["PreferredMfaSetting"] = "SOFTWARE_TOKEN_MFA"
				}
			}
			return out, nil
		}),
		"ListUsers":        a.adminOp("ListUsers", a.listUsers),
		"ListUsersInGroup": a.adminOp("ListUsersInGroup", a.listUsersInGroup),
		"AdminDeleteUser": a.adminOp("AdminDeleteUser", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			name, err := decodeUser(body)
			if err != nil {
				return nil, err
			}
			if err := a.svc.DeleteUser(ctx, p, name); err != nil {
				return nil, err
			}
			return struct{}{}, nil
		}),
		"AdminDisableUser": a.adminOp("AdminDisableUser", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			name, err := decodeUser(body)
			if err != nil {
				return nil, err
			}
			return struct{}{}, p.AdminDisableUser(ctx, name)
		}),
		"AdminEnableUser": simple("AdminEnableUser", func(u *store.User) error { u.Enabled = true; return nil }),
		"AdminSetUserPassword": a.adminOp("AdminSetUserPassword", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			var in struct {
				Username, Password string
				Permanent          bool
			}
			if err := awsjson.Decode(body, &in); err != nil {
				return nil, err
			}
			if err := p.AdminSetPassword(ctx, in.Username, in.Password, in.Permanent); err != nil {
				return nil, err
			}
			return struct{}{}, nil
		}),
		"AdminResetUserPassword": a.adminOp("AdminResetUserPassword", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			name, err := decodeUser(body)
			if err != nil {
				return nil, err
			}
			return struct{}{}, p.AdminResetPassword(ctx, name)
		}),
		"AdminAddUserToGroup":      a.groupOp("AdminAddUserToGroup", true),
		"AdminRemoveUserFromGroup": a.groupOp("AdminRemoveUserFromGroup", false),
		"AdminListGroupsForUser": a.adminOp("AdminListGroupsForUser", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			name, err := decodeUser(body)
			if err != nil {
				return nil, err
			}
			u, err := p.AdminGetUser(ctx, name)
			if err != nil {
				return nil, err
			}
			groups := []map[string]any{}
			for _, g := range u.Groups {
				if sg, err := a.svc.Group(ctx, p, g); err == nil {
					groups = append(groups, groupType(sg))
				}
			}
			return map[string]any{"Groups": groups}, nil
		}),
		"AdminUserGlobalSignOut": a.adminOp("AdminUserGlobalSignOut", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			name, err := decodeUser(body)
			if err != nil {
				return nil, err
			}
			u, err := p.AdminGetUser(ctx, name)
			if err != nil {
				return nil, err
			}
			return struct{}{}, p.SignOutUser(ctx, u, "")
		}),
		"AdminInitiateAuth": a.adminOp("AdminInitiateAuth", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			var in struct {
				AuthFlow, ClientId string
				AuthParameters     map[string]string
			}
			if err := awsjson.Decode(body, &in); err != nil {
				return nil, err
			}
			c, err := p.Client(ctx, in.ClientId)
			if err != nil {
				return nil, err
			}
			switch in.AuthFlow {
			case "ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH":
			case "REFRESH_TOKEN_AUTH", "REFRESH_TOKEN":
				return refreshAuth(ctx, p, c, in.AuthParameters)
			default:
				return nil, awsjson.Errorf("InvalidParameterException", "Unsupported AuthFlow "+truncate(in.AuthFlow, 40))
			}
			if !userpool.HasFlow(c, "admin_user_password") {
				return nil, awsjson.Errorf("InvalidParameterException", "ADMIN_USER_PASSWORD_AUTH flow not enabled for this client")
			}
			ap := in.AuthParameters
			res, err := p.AdminPasswordAuth(ctx, c, ap["USERNAME"], ap["PASSWORD"], ap["SECRET_HASH"])
			if err != nil {
				return nil, err
			}
			return authResult(res), nil
		}),
		"AdminRespondToAuthChallenge": a.adminOp("AdminRespondToAuthChallenge", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			in, err := decodeChallenge(body)
			if err != nil {
				return nil, err
			}
			if in.ClientId == "" {
				return nil, missing("clientId")
			}
			c, err := p.Client(ctx, in.ClientId)
			if err != nil {
				return nil, err
			}
			res, err := p.AdminRespond(ctx, c, in.ChallengeName, in.Session, in.ChallengeResponses)
			if err != nil {
				return nil, err
			}
			return authResult(res), nil
		}),
		"AdminUpdateUserAttributes": a.adminOp("AdminUpdateUserAttributes", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			var in struct {
				Username       string
				UserAttributes []attributeType
			}
			if err := awsjson.Decode(body, &in); err != nil {
				return nil, err
			}
			if in.Username == "" {
				return nil, missing("username")
			}
			if in.UserAttributes == nil {
				return nil, missing("userAttributes")
			}
			return struct{}{}, p.AdminUpdateAttributes(ctx, in.Username, toAttrs(in.UserAttributes))
		}),
		"AdminDeleteUserAttributes": a.adminOp("AdminDeleteUserAttributes", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			var in struct {
				Username           string
				UserAttributeNames []string
			}
			if err := awsjson.Decode(body, &in); err != nil {
				return nil, err
			}
			if in.Username == "" {
				return nil, missing("username")
			}
			if in.UserAttributeNames == nil {
				return nil, missing("userAttributeNames")
			}
			return struct{}{}, p.AdminDeleteAttributes(ctx, in.Username, in.UserAttributeNames)
		}),
		"CreateGroup": a.adminOp("CreateGroup", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			var in struct {
				GroupName, Description, RoleArn string
				Precedence                      *int // unset by default, as in Cognito
			}
			if err := awsjson.Decode(body, &in); err != nil {
				return nil, err
			}
			if err := mayPassRole(ctx, in.RoleArn); err != nil {
				return nil, err
			}
			g, err := a.svc.CreateGroup(ctx, p, store.Group{Name: in.GroupName, Description: in.Description, RoleARN: in.RoleArn, Precedence: in.Precedence})
			if err != nil {
				return nil, err
			}
			return map[string]any{"Group": groupType(g)}, nil
		}),
		"ListGroups": a.adminOp("ListGroups", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			var in struct {
				Limit     int // 0: Cognito's default and most
				NextToken string
			}
			if err := awsjson.Decode(body, &in); err != nil {
				return nil, err
			}
			gs, next, err := a.svc.ListGroupsPage(ctx, p, in.NextToken, in.Limit)
			if err != nil {
				return nil, err
			}
			out := []map[string]any{}
			for _, g := range gs {
				out = append(out, groupType(g))
			}
			res := map[string]any{"Groups": out}
			if next != "" {
				res["NextToken"] = next
			}
			return res, nil
		}),
		"GetGroup":    a.adminOp("GetGroup", a.getGroup),
		"UpdateGroup": a.adminOp("UpdateGroup", a.updateGroup),
		"DeleteGroup": a.adminOp("DeleteGroup", a.deleteGroup),
		"AdminConfirmSignUp": a.adminOp("AdminConfirmSignUp", func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
			name, err := decodeUser(body)
			if err != nil {
				return nil, err
			}
			return struct{}{}, p.AdminConfirmSignUp(ctx, name)
		}),
		"AdminSetUserMFAPreference": a.adminOp("AdminSetUserMFAPreference", a.adminSetUserMFAPreference),
	}
}

func groupType(g store.Group) map[string]any {
	m := map[string]any{"GroupName": g.Name, "UserPoolId": g.PoolID, "CreationDate": g.CreatedAt.Unix(), "LastModifiedDate": g.UpdatedAt.Unix()}
	if g.Precedence != nil {
		m["Precedence"] = *g.Precedence
	}
	if g.RoleARN != "" {
		m["RoleArn"] = g.RoleARN
	}
	if g.Description != "" {
		m["Description"] = g.Description
	}
	return m
}

func (a *IDP) groupOp(op string, add bool) awsjson.Op {
	return a.adminOp(op, func(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
		var in struct{ Username, GroupName string }
		if err := awsjson.Decode(body, &in); err != nil {
			return nil, err
		}
		if err := a.svc.SetGroupMembership(ctx, p, op, in.Username, in.GroupName, add); err != nil {
			return nil, err
		}
		return struct{}{}, nil
	})
}

// decodeGroupName decodes the GroupName of a request about one group.
func decodeGroupName(body []byte) (string, error) {
	var in struct{ GroupName string }
	if err := awsjson.Decode(body, &in); err != nil {
		return "", err
	}
	if in.GroupName == "" {
		return "", missing("groupName")
	}
	return in.GroupName, nil
}

// getGroup serves GetGroup.
func (a *IDP) getGroup(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
	name, err := decodeGroupName(body)
	if err != nil {
		return nil, err
	}
	g, err := a.svc.Group(ctx, p, name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Group": groupType(g)}, nil
}

// updateGroup serves UpdateGroup: only the members present change, as in
// Cognito, so that a script setting the description keeps the precedence.
func (a *IDP) updateGroup(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
	var in struct {
		GroupName            string
		Description, RoleArn *string
		Precedence           *int
	}
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.GroupName == "" {
		return nil, missing("groupName")
	}
	if in.RoleArn != nil {
		if err := mayPassRole(ctx, *in.RoleArn); err != nil {
			return nil, err
		}
	}
	g, err := a.svc.UpdateGroup(ctx, p, in.GroupName, userpool.GroupUpdate{Description: in.Description, Precedence: in.Precedence, RoleARN: in.RoleArn})
	if err != nil {
		return nil, err
	}
	return map[string]any{"Group": groupType(g)}, nil
}

// deleteGroup serves DeleteGroup; the group's members leave it too.
func (a *IDP) deleteGroup(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
	name, err := decodeGroupName(body)
	if err != nil {
		return nil, err
	}
	if err := a.svc.DeleteGroup(ctx, p, name); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// adminSetUserMFAPreference serves AdminSetUserMFAPreference, the
// administrator's SetUserMFAPreference.
func (a *IDP) adminSetUserMFAPreference(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
	var in struct {
		Username string
		mfaPreference
	}
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.Username == "" {
		return nil, missing("username")
	}
	enabled, preferred, err := in.totp()
	if err != nil {
		return nil, err
	}
	if err := p.AdminSetMFAPreference(ctx, in.Username, enabled, preferred); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
