package userpool

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/store"
)

// A user's memberships live on the user (store.User.Groups), not on the
// group, so every write that must agree with the group's existence reads
// the group in the transaction that writes the users: under the stores'
// serializable transactions no membership outlives its group.

func errGroupNotFound() *Error { return newErr(CodeResourceNotFound, "Group not found.") }

// groupErr is the error a group operation answers for err:
// ResourceNotFoundException for a missing group, an *Error as it is, or
// an internal error.
func groupErr(err error) error { return storeErr(err, errGroupNotFound) }

// checkGroup checks what an administrator sets on a group against
// Cognito's constraints on CreateGroup and UpdateGroup.
func checkGroup(g store.Group) error {
	switch {
	case g.RoleARN != "" && !roleARN(g.RoleARN):
		return newErr(CodeInvalidParameter, "1 validation error detected: Value at 'roleArn' failed to satisfy constraint: Member must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
	case g.Precedence != nil && *g.Precedence < 0:
		return newErr(CodeInvalidParameter, "1 validation error detected: Value '"+strconv.Itoa(*g.Precedence)+
			"' at 'precedence' failed to satisfy constraint: Member must have value greater than or equal to 0")
	case g.Precedence != nil && *g.Precedence > math.MaxInt32:
		return newErr(CodeInvalidParameter, "1 validation error detected: Value '"+strconv.Itoa(*g.Precedence)+
			"' at 'precedence' failed to satisfy constraint: Member must have value less than or equal to 2147483647")
	case utf8.RuneCountInString(g.Description) > 2048:
		return newErr(CodeInvalidParameter, "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 2048")
	}
	return nil
}

// checkGroupName checks a new group's name as Cognito does (an existing
// group's, from the configuration, is not checked again: its updates go
// on).
func checkGroupName(name string) error { return checkName("groupName", name) }

// roleARN reports whether s is an IAM role's ARN.
func roleARN(s string) bool {
	parts := strings.SplitN(s, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && parts[1] != "" && parts[2] == "iam" && parts[3] == "" && len(parts[4]) == 12 &&
		strings.Trim(parts[4], "0123456789") == "" && strings.HasPrefix(parts[5], "role/") && len(parts[5]) > len("role/") &&
		!strings.ContainsAny(s, " \t\r\n")
}

// Group returns a pool's group (ResourceNotFoundException when absent).
func (s *Service) Group(ctx context.Context, p *Pool, name string) (store.Group, error) {
	g, err := s.deps.Store.GetGroup(ctx, p.cfg.ID, name)
	if err != nil {
		return store.Group{}, groupErr(err)
	}
	return g, nil
}

// ListGroups lists a pool's groups.
func (s *Service) ListGroups(ctx context.Context, p *Pool) ([]store.Group, error) {
	gs, err := s.deps.Store.ListGroups(ctx, p.cfg.ID)
	if err != nil {
		return nil, internal(err)
	}
	return gs, nil
}

// CreateGroup creates a group (GroupExistsException when it exists). The
// check and the write are one transaction: PutGroup replaces, so two
// concurrent creations must not both pass the check.
func (s *Service) CreateGroup(ctx context.Context, p *Pool, g store.Group) (store.Group, error) {
	if err := checkGroupName(g.Name); err != nil {
		return store.Group{}, err
	}
	if err := checkGroup(g); err != nil {
		return store.Group{}, err
	}
	g.PoolID, g.CreatedAt = p.cfg.ID, s.deps.Now()
	g.UpdatedAt = g.CreatedAt
	err := s.deps.Store.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.GetGroup(ctx, p.cfg.ID, g.Name); err == nil {
			return newErr("GroupExistsException", "A group with the name already exists.")
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return tx.PutGroup(ctx, g)
	})
	if err != nil {
		return store.Group{}, groupErr(err)
	}
	p.record(ctx, audit.Event{Action: "CreateGroup", Outcome: audit.Allow, Resource: g.Name})
	return g, nil
}

// GroupUpdate is what UpdateGroup changes: a nil field stays as it is.
type GroupUpdate struct {
	Description *string
	Precedence  *int
	RoleARN     *string
}

// UpdateGroup changes a group's description, precedence or role ARN
// (ResourceNotFoundException when the pool has no such group). The group
// is read and written in one transaction, so that the write cannot bring
// back a group a concurrent DeleteGroup removed. A group from the
// configuration gets its configured values back at the next start (Seed).
func (s *Service) UpdateGroup(ctx context.Context, p *Pool, name string, up GroupUpdate) (store.Group, error) {
	var g store.Group
	err := s.deps.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		if g, err = tx.GetGroup(ctx, p.cfg.ID, name); err != nil {
			return err
		}
		if up.Description != nil {
			g.Description = *up.Description
		}
		if up.Precedence != nil {
			g.Precedence = up.Precedence
		}
		if up.RoleARN != nil {
			g.RoleARN = *up.RoleARN
		}
		if err := checkGroup(g); err != nil {
			return err
		}
		g.UpdatedAt = s.deps.Now()
		return tx.PutGroup(ctx, g)
	})
	if err != nil {
		return store.Group{}, groupErr(err)
	}
	p.record(ctx, audit.Event{Action: "UpdateGroup", Outcome: audit.Allow, Resource: name})
	return g, nil
}

// DeleteGroup deletes a group and takes it from every member in the same
// transaction (ResourceNotFoundException when the pool has no such
// group): no user keeps a membership that would still show in its new
// tokens' cognito:groups, or pass to a group created later under the
// same name.
func (s *Service) DeleteGroup(ctx context.Context, p *Pool, name string) error {
	err := s.deps.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.DeleteGroup(ctx, p.cfg.ID, name); err != nil {
			return err
		}
		return removeFromGroup(ctx, tx, p.cfg.ID, name, p.now())
	})
	if err != nil {
		return groupErr(err)
	}
	p.record(ctx, audit.Event{Action: "DeleteGroup", Outcome: audit.Allow, Resource: name})
	return nil
}

// removeFromGroup takes group, in tx, from every user of the pool that
// is in it.
func removeFromGroup(ctx context.Context, tx store.Tx, poolID, group string, now time.Time) error {
	const batch = 500
	after := ""
	for {
		us, err := tx.ListUsers(ctx, poolID, after, batch)
		if err != nil {
			return err
		}
		for _, u := range us {
			if !slices.Contains(u.Groups, group) {
				continue
			}
			if _, err := tx.UpdateUser(ctx, poolID, u.Username, func(x *store.User) error {
				x.Groups = without(x.Groups, group)
				x.UpdatedAt = now
				return nil
			}); err != nil {
				return err
			}
		}
		if len(us) < batch {
			return nil
		}
		after = us[len(us)-1].Username
	}
}

// SetGroupMembership adds username to group, or with member false takes
// it out (AdminAddUserToGroup, AdminRemoveUserFromGroup: action is
// recorded): ResourceNotFoundException when the pool has no such group,
// UserNotFoundException when it has no such user. The group is read in
// the transaction that writes the user, so that a membership is never
// added to a group a concurrent DeleteGroup removes.
func (s *Service) SetGroupMembership(ctx context.Context, p *Pool, action, username, group string, member bool) error {
	var u store.User
	err := s.deps.Store.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.GetGroup(ctx, p.cfg.ID, group); errors.Is(err, store.ErrNotFound) {
			return errGroupNotFound()
		} else if err != nil {
			return err
		}
		var err error
		u, err = tx.UpdateUser(ctx, p.cfg.ID, username, func(x *store.User) error {
			x.Groups = without(x.Groups, group)
			if member {
				x.Groups = append(x.Groups, group)
			}
			x.UpdatedAt = p.now()
			return nil
		})
		return err
	})
	if err != nil {
		return storeErr(err, errUserNotFound)
	}
	p.record(ctx, audit.Event{Action: action, Outcome: audit.Allow, Username: username, Sub: u.Sub, Resource: group})
	return nil
}

// without returns a copy of groups without group.
func without(groups []string, group string) []string {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if g != group {
			out = append(out, g)
		}
	}
	return out
}
