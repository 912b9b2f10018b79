package sts

import (
	"strings"

	"github.com/writ-id/writ/internal/config"
	"github.com/writ-id/writ/internal/iam"
)

// Caller is the principal behind verified SigV4 credentials, with the
// policy sets that decide what it may do and the condition keys it brings.
type Caller struct {
	ARN     string
	UserID  string
	Session *Session // nil for IAM users
	// Sets are the identity policies first, then session policy and
	// permissions boundary when present (for iam.Authorize).
	Sets    []iam.Set
	Context iam.MapContext
}

// CallerOf turns a sigv4.Credentials Principal from Source into a Caller.
func (s *Service) CallerOf(principal any) (*Caller, bool) {
	cx := iam.MapContext{}
	switch p := principal.(type) {
	case *config.IAMUser:
		c := &Caller{ARN: "arn:aws:iam::" + s.account + ":user/" + p.Name, UserID: "AIDA" + strings.ToUpper(strings.ReplaceAll(p.Name, "-", "")), Context: cx}
		cx.Set("aws:username", p.Name)
		cx.Set("aws:userid", c.UserID)
		cx.Set("aws:PrincipalArn", c.ARN)
		set := iam.Set{Name: "identity"}
		if pol := s.users[p.AccessKeyID]; pol != nil {
			set.Policies = []*iam.Policy{pol}
		} else if !p.Policy.IsZero() {
			if pol, err := iam.Parse(p.Policy.Bytes()); err == nil {
				set.Policies = []*iam.Policy{pol}
			}
		}
		c.Sets = []iam.Set{set}
		return c, true
	case *Session:
		role, ok := s.Role(p.Role)
		if !ok {
			return nil, false
		}
		c := &Caller{ARN: s.AssumedRoleARN(p.Role, p.SessionName), Session: p, Context: cx,
			UserID: "AROA" + strings.ToUpper(strings.ReplaceAll(p.Role, "-", "")) + ":" + p.SessionName}
		cx.Set("aws:userid", c.UserID)
		cx.Set("aws:PrincipalArn", role.ARN)
		for k, v := range p.Tags {
			cx.Set("aws:PrincipalTag/"+k, v)
		}
		sub := p.Subject
		if p.IdentityID != "" {
			sub = p.IdentityID
		}
		cx.Set(p.Provider+":sub", sub)
		if p.Audience != "" {
			cx.Set(p.Provider+":aud", p.Audience)
		}
		if len(p.AMR) > 0 {
			cx.Set(p.Provider+":amr", p.AMR...)
		}
		id := iam.Set{Name: "identity"}
		if role.Policy != nil {
			id.Policies = []*iam.Policy{role.Policy}
		}
		c.Sets = []iam.Set{id}
		if len(p.SessionPolicy) > 0 {
			sp, err := iam.Parse(p.SessionPolicy)
			if err != nil {
				return nil, false // fail closed: a session policy that cannot be read must not widen access
			}
			c.Sets = append(c.Sets, iam.Set{Name: "session", Policies: []*iam.Policy{sp}})
		}
		if role.Boundary != nil {
			c.Sets = append(c.Sets, iam.Set{Name: "boundary", Policies: []*iam.Policy{role.Boundary}})
		}
		return c, true
	}
	return nil, false
}
