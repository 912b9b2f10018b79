package userpool

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"

	"github.com/writ-id/writ/internal/store"
)

// MaxListLimit is the largest page ListUsers, ListUsersInGroup and
// ListGroups return,
// and the size of a page when the caller names none (Limit 0).
const MaxListLimit = 60

// Listing names one listing (ListUsers, ListUsersInGroup of one group,
// ListGroups), to which its pagination tokens are bound.
type Listing string

// ListingGroup is the listing of ListUsersInGroup for group.
func ListingGroup(group string) Listing { return Listing("group/" + group) }

// ListingUsers is the listing of ListUsers.
const ListingUsers Listing = "users"

// ListingGroups is the listing of ListGroups.
const ListingGroups Listing = "groups"

// ListGroupsPage returns up to limit groups of pool p in name order,
// starting where the pagination token (from an earlier page) left off,
// and the token of the next page ("" when none is left), under the rules
// of ListUsersPage.
func (s *Service) ListGroupsPage(ctx context.Context, p *Pool, token string, limit int) ([]store.Group, string, error) {
	limit, after, err := s.pageStart(p, ListingGroups, token, limit)
	if err != nil {
		return nil, "", err
	}
	gs, err := s.ListGroups(ctx, p)
	if err != nil {
		return nil, "", err
	}
	slices.SortFunc(gs, func(x, y store.Group) int { return strings.Compare(x.Name, y.Name) })
	gs = slices.DeleteFunc(gs, func(g store.Group) bool { return g.Name <= after })
	if len(gs) > limit {
		gs = gs[:limit]
		return gs, s.pageToken(p, ListingGroups, gs[len(gs)-1].Name), nil
	}
	return gs, "", nil
}

// pageStart checks a page's limit (0 to MaxListLimit; 0 is MaxListLimit)
// and token (one this server issued for p and l) and returns the limit
// and where the page starts: after the name the token holds.
func (s *Service) pageStart(p *Pool, l Listing, token string, limit int) (int, string, error) {
	if limit < 0 || limit > MaxListLimit {
		return 0, "", newErr(CodeInvalidParameter, "1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value between 0 and 60")
	}
	if limit == 0 {
		limit = MaxListLimit
	}
	after := ""
	if token != "" {
		var ok bool
		if after, ok = s.openPageToken(p, l, token); !ok {
			return 0, "", newErr(CodeInvalidParameter, "The pagination token is invalid.")
		}
	}
	return limit, after, nil
}

// ListUsersPage returns up to limit users of pool p that match (all when
// match is nil), in username order, starting where the pagination token
// (from an earlier page of the same listing) left off, and the token of
// the next page ("" when none is left). limit must be 0 (MaxListLimit) to
// MaxListLimit, and token one this server issued for the same pool and
// listing, else InvalidParameterException.
func (s *Service) ListUsersPage(ctx context.Context, p *Pool, l Listing, token string, limit int, match func(store.User) bool) ([]store.User, string, error) {
	limit, after, err := s.pageStart(p, l, token, limit)
	if err != nil {
		return nil, "", err
	}
	const batch = 500
	var out []store.User
	for {
		us, err := s.deps.Store.ListUsers(ctx, p.cfg.ID, after, batch)
		if err != nil {
			return nil, "", internal(err)
		}
		for _, u := range us {
			if match != nil && !match(u) {
				continue
			}
			if len(out) == limit {
				return out, s.pageToken(p, l, out[len(out)-1].Username), nil
			}
			out = append(out, u)
		}
		if len(us) < batch {
			return out, "", nil
		}
		after = us[len(us)-1].Username
	}
}

// pageToken is an opaque pagination token: the last username of a page and
// a keyed hash binding it to the pool and listing, so that the server
// accepts only tokens it issued.
func (s *Service) pageToken(p *Pool, l Listing, after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(after)) + "." +
		base64.RawURLEncoding.EncodeToString(s.HashClientSecret(pageTokenInput(p, l, after)))
}

func (s *Service) openPageToken(p *Pool, l Listing, token string) (after string, ok bool) {
	a, m, found := strings.Cut(token, ".")
	if !found || len(token) > 1024 {
		return "", false
	}
	raw, err1 := base64.RawURLEncoding.DecodeString(a)
	mac, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil || !s.checkHash(pageTokenInput(p, l, string(raw)), mac) {
		return "", false
	}
	return string(raw), true
}

func pageTokenInput(p *Pool, l Listing, after string) string {
	return "page-token\x00" + p.cfg.ID + "\x00" + string(l) + "\x00" + after
}
