package cognito

import (
	"context"
	"regexp"
	"strings"

	"github.com/writ-id/writ/internal/awsjson"
	"github.com/writ-id/writ/internal/store"
	"github.com/writ-id/writ/internal/userpool"
)

// listUsers serves ListUsers: the users matching Filter, Limit (0 to 60)
// at a time, each with the attributes AttributesToGet names (all when it
// is absent).
func (a *IDP) listUsers(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
	var in struct {
		Filter          string
		Limit           int
		PaginationToken string
		AttributesToGet []string
	}
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	match, err := parseFilter(in.Filter)
	if err != nil {
		return nil, err
	}
	us, next, err := a.svc.ListUsersPage(ctx, p, userpool.ListingUsers, in.PaginationToken, in.Limit, match)
	if err != nil {
		return nil, err
	}
	res := map[string]any{"Users": userTypes(us, in.AttributesToGet)}
	if next != "" {
		res["PaginationToken"] = next
	}
	return res, nil
}

// listUsersInGroup serves ListUsersInGroup: the group's members, Limit (0
// to 60) at a time.
func (a *IDP) listUsersInGroup(ctx context.Context, p *userpool.Pool, body []byte) (any, error) {
	var in struct {
		GroupName string
		Limit     int
		NextToken string
	}
	if err := awsjson.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.GroupName == "" {
		return nil, missing("groupName")
	}
	if _, err := a.svc.Group(ctx, p, in.GroupName); err != nil {
		return nil, err
	}
	member := func(u store.User) bool {
		for _, g := range u.Groups {
			if g == in.GroupName {
				return true
			}
		}
		return false
	}
	us, next, err := a.svc.ListUsersPage(ctx, p, userpool.ListingGroup(in.GroupName), in.NextToken, in.Limit, member)
	if err != nil {
		return nil, err
	}
	res := map[string]any{"Users": userTypes(us, nil)}
	if next != "" {
		res["NextToken"] = next
	}
	return res, nil
}

// userTypes lists users as UserType, each with the attributes named in
// only, or all of them when only is nil.
func userTypes(us []store.User, only []string) []map[string]any {
	out := make([]map[string]any, 0, len(us))
	for _, u := range us {
		ut := userType(u, "Attributes")
		if only != nil {
			want := map[string]bool{}
			for _, n := range only {
				want[n] = true
			}
			attrs := []attributeType{}
			for _, at := range ut["Attributes"].([]attributeType) {
				if want[at.Name] {
					attrs = append(attrs, at)
				}
			}
			ut["Attributes"] = attrs
		}
		out = append(out, ut)
	}
	return out
}

var filterRE = regexp.MustCompile(`^\s*([\w:]+)\s*(=|\^=)\s*"((?:[^"\\]|\\.)*)"\s*$`)

// filterAttrs are the attributes ListUsers can search, as in Cognito
// (custom attributes cannot be searched), with each one's value.
var filterAttrs = map[string]func(store.User) string{
	"username":           func(u store.User) string { return u.Username },
	"email":              func(u store.User) string { return u.Email },
	"sub":                func(u store.User) string { return u.Sub },
	"phone_number":       stored("phone_number"),
	"name":               stored("name"),
	"given_name":         stored("given_name"),
	"family_name":        stored("family_name"),
	"preferred_username": stored("preferred_username"),
	// cognito:user_status is the account status (CONFIRMED, ...); status
	// is whether the user is enabled (Enabled or Disabled).
	"cognito:user_status": func(u store.User) string { return u.Status },
	"status": func(u store.User) string {
		if u.Enabled {
			return "Enabled"
		}
		return "Disabled"
	},
}

func stored(name string) func(store.User) string {
	return func(u store.User) string { return u.Attributes[name] }
}

// parseFilter parses ListUsers' Filter: `attribute = "value"` (exact) or
// `attribute ^= "value"` (prefix), quotation marks in the value escaped
// with a backslash, on one of filterAttrs. cognito:user_status compares
// case-insensitively, the others exactly.
func parseFilter(f string) (func(store.User) bool, error) {
	if strings.TrimSpace(f) == "" {
		return nil, nil
	}
	m := filterRE.FindStringSubmatch(f)
	if m == nil {
		return nil, awsjson.Errorf("InvalidParameterException", "Error while parsing filter.")
	}
	attr, op, val := m[1], m[2], unescapeFilter(m[3])
	value, ok := filterAttrs[attr]
	if !ok {
		return nil, awsjson.Errorf("InvalidParameterException", "Invalid search attribute: "+truncate(attr, 40)+" is not a searchable attribute.")
	}
	fold := attr == "cognito:user_status"
	if fold {
		val = strings.ToUpper(val)
	}
	return func(u store.User) bool {
		v := value(u)
		if fold {
			v = strings.ToUpper(v)
		}
		if op == "^=" {
			return strings.HasPrefix(v, val)
		}
		return v == val
	}, nil
}

// unescapeFilter undoes the backslash escapes of a filter value.
func unescapeFilter(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
