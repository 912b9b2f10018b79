package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/writ-id/writ/internal/store"
)

// --- users ---------------------------------------------------------------------

const userCols = `pool_id, username, sub, email, email_verified, attributes, status, enabled, password_hash,
	totp_secret, totp_pending, totp_enabled, mfa_preferred, groups_json, revoked_before, created_at, updated_at`

func userArgs(u store.User) []any {
	if u.Attributes == nil {
		u.Attributes = map[string]string{}
	}
	if u.Groups == nil {
		u.Groups = []string{}
	}
	return []any{u.PoolID, u.Username, u.Sub, u.Email, b2i(u.EmailVerified), jsonText(u.Attributes), u.Status,
		b2i(u.Enabled), u.PasswordHash, u.TOTPSecret, u.TOTPPending, b2i(u.TOTPEnabled), b2i(u.MFAPreferred),
		jsonText(u.Groups), ms(u.RevokedBefore), ms(u.CreatedAt), ms(u.UpdatedAt)}
}

type scanner interface{ Scan(dest ...any) error }

func scanUser(r scanner) (store.User, error) {
	var u store.User
	var ev, en, te, mp int
	var attrs, groups string
	var rb, ca, ua int64
	err := r.Scan(&u.PoolID, &u.Username, &u.Sub, &u.Email, &ev, &attrs, &u.Status, &en, &u.PasswordHash,
		&u.TOTPSecret, &u.TOTPPending, &te, &mp, &groups, &rb, &ca, &ua)
	if err != nil {
		return store.User{}, err
	}
	u.EmailVerified, u.Enabled, u.TOTPEnabled, u.MFAPreferred = ev == 1, en == 1, te == 1, mp == 1
	u.Attributes = fromJSON[map[string]string](attrs)
	u.Groups = fromJSON[[]string](groups)
	u.RevokedBefore, u.CreatedAt, u.UpdatedAt = fromMS(rb), fromMS(ca), fromMS(ua)
	return u, nil
}

func (c *conn) CreateUser(ctx context.Context, u store.User) error {
	return c.run(ctx, func(c *conn) error {
		_, err := c.exec(ctx, `INSERT INTO users (`+userCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, userArgs(u)...)
		return c.conflictOr(err, "create user "+u.Username)
	})
}

func (c *conn) GetUser(ctx context.Context, poolID, username string) (store.User, error) {
	u, err := scanUser(c.row(ctx, `SELECT `+userCols+` FROM users WHERE pool_id = ? AND username = ?`, poolID, username))
	return u, scanErr(err, "user", poolID, username)
}

func (c *conn) GetUserBySub(ctx context.Context, sub string) (store.User, error) {
	u, err := scanUser(c.row(ctx, `SELECT `+userCols+` FROM users WHERE sub = ?`, sub))
	return u, scanErr(err, "user", sub)
}

func (c *conn) UpdateUser(ctx context.Context, poolID, username string, fn func(*store.User) error) (store.User, error) {
	var out store.User
	err := c.run(ctx, func(c *conn) error {
		u, err := c.GetUser(ctx, poolID, username)
		if err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		if u.PoolID != poolID || u.Username != username {
			return fmt.Errorf("store: update user: key fields changed")
		}
		a := userArgs(u)
		_, err = c.exec(ctx, `UPDATE users SET sub=?, email=?, email_verified=?, attributes=?, status=?, enabled=?,
			password_hash=?, totp_secret=?, totp_pending=?, totp_enabled=?, mfa_preferred=?, groups_json=?, revoked_before=?,
			created_at=?, updated_at=? WHERE pool_id=? AND username=?`, append(a[2:], poolID, username)...)
		if err != nil {
			return c.conflictOr(err, "update user")
		}
		out = u
		return nil
	})
	return out, err
}

func (c *conn) DeleteUser(ctx context.Context, poolID, username string) error {
	return c.deleteOne(ctx, "user", `DELETE FROM users WHERE pool_id = ? AND username = ?`, poolID, username)
}

func (c *conn) deleteOne(ctx context.Context, what, q string, args ...any) error {
	return c.run(ctx, func(c *conn) error {
		res, err := c.exec(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("store: delete %s: %w", what, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			keys := make([]string, len(args))
			for i, a := range args {
				keys[i] = fmt.Sprint(a)
			}
			return notFound(what, keys...)
		}
		return nil
	})
}

func (c *conn) ListUsers(ctx context.Context, poolID, after string, limit int) ([]store.User, error) {
	q := `SELECT ` + userCols + ` FROM users WHERE pool_id = ? AND username > ? ORDER BY username`
	args := []any{poolID, after}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// --- groups ----------------------------------------------------------------------

func (c *conn) PutGroup(ctx context.Context, g store.Group) error {
	return c.run(ctx, func(c *conn) error {
		prec, set := int64(unsetPrecedence), 0
		if g.Precedence != nil {
			prec, set = int64(*g.Precedence), 1
		}
		_, err := c.exec(ctx, `INSERT INTO user_groups (pool_id, name, description, precedence, precedence_set, role_arn, created_at, updated_at)
			VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (pool_id, name) DO UPDATE SET description = excluded.description,
			precedence = excluded.precedence, precedence_set = excluded.precedence_set, role_arn = excluded.role_arn,
			updated_at = excluded.updated_at`,
			g.PoolID, g.Name, g.Description, prec, set, g.RoleARN, ms(g.CreatedAt), ms(g.UpdatedAt))
		return c.conflictOr(err, "put group")
	})
}

// unsetPrecedence is the precedence column of a group without one (nil
// Precedence, precedence_set 0): the last value, where replicas of the
// version before the column, which read precedence alone, rank it.
const unsetPrecedence = math.MaxInt32

const groupCols = `pool_id, name, description, precedence, precedence_set, role_arn, created_at, updated_at`

func scanGroup(r scanner) (store.Group, error) {
	var g store.Group
	var ca, ua, prec, set int64
	err := r.Scan(&g.PoolID, &g.Name, &g.Description, &prec, &set, &g.RoleARN, &ca, &ua)
	if set != 0 {
		n := int(prec)
		g.Precedence = &n
	}
	if ua == 0 { // written by a replica of a version before migration 6 (7 on PostgreSQL)
		ua = ca
	}
	g.CreatedAt, g.UpdatedAt = fromMS(ca), fromMS(ua)
	return g, err
}

func (c *conn) GetGroup(ctx context.Context, poolID, name string) (store.Group, error) {
	g, err := scanGroup(c.row(ctx, `SELECT `+groupCols+` FROM user_groups WHERE pool_id = ? AND name = ?`, poolID, name))
	return g, scanErr(err, "group", poolID, name)
}

func (c *conn) ListGroups(ctx context.Context, poolID string) ([]store.Group, error) {
	return list(c, ctx, scanGroup, `SELECT `+groupCols+` FROM user_groups WHERE pool_id = ? ORDER BY precedence, precedence_set DESC, name`, poolID)
}

func (c *conn) DeleteGroup(ctx context.Context, poolID, name string) error {
	return c.deleteOne(ctx, "group", `DELETE FROM user_groups WHERE pool_id = ? AND name = ?`, poolID, name)
}

func list[T any](c *conn, ctx context.Context, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	out, err := scanAll(rows, scan, nil)
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	return out, nil
}

// scanAll appends to out what scan reads from each of rows, and closes
// rows.
func scanAll[T any](rows *sql.Rows, scan func(scanner) (T, error), out []T) ([]T, error) {
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// --- clients ---------------------------------------------------------------------

const clientCols = `client_id, pool_id, name, secret_hash, public, flows, redirect_uris, logout_uris, scopes, exchange_audiences, jwks, created_at, updated_at`

func strs(s []string) string {
	if s == nil {
		s = []string{}
	}
	return jsonText(s)
}

func (c *conn) PutClient(ctx context.Context, cl store.Client) error {
	return c.run(ctx, func(c *conn) error {
		_, err := c.exec(ctx, `INSERT INTO clients (`+clientCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT (client_id) DO UPDATE SET pool_id = excluded.pool_id, name = excluded.name,
			secret_hash = excluded.secret_hash, public = excluded.public, flows = excluded.flows,
			redirect_uris = excluded.redirect_uris, logout_uris = excluded.logout_uris, scopes = excluded.scopes,
			exchange_audiences = excluded.exchange_audiences, jwks = excluded.jwks, updated_at = excluded.updated_at`,
			cl.ClientID, cl.PoolID, cl.Name, cl.SecretHash, b2i(cl.Public), strs(cl.Flows), strs(cl.RedirectURIs),
			strs(cl.LogoutURIs), strs(cl.Scopes), strs(cl.ExchangeAudiences), cl.JWKS, ms(cl.CreatedAt), ms(cl.UpdatedAt))
		return c.conflictOr(err, "put client")
	})
}

func scanClient(r scanner) (store.Client, error) {
	var cl store.Client
	var pub int
	var flows, ru, lu, sc, ea string
	var ca, ua int64
	err := r.Scan(&cl.ClientID, &cl.PoolID, &cl.Name, &cl.SecretHash, &pub, &flows, &ru, &lu, &sc, &ea, &cl.JWKS, &ca, &ua)
	cl.Public = pub == 1
	cl.Flows, cl.RedirectURIs, cl.LogoutURIs = fromJSON[[]string](flows), fromJSON[[]string](ru), fromJSON[[]string](lu)
	cl.Scopes, cl.ExchangeAudiences = fromJSON[[]string](sc), fromJSON[[]string](ea)
	cl.CreatedAt, cl.UpdatedAt = fromMS(ca), fromMS(ua)
	return cl, err
}

func (c *conn) GetClient(ctx context.Context, clientID string) (store.Client, error) {
	cl, err := scanClient(c.row(ctx, `SELECT `+clientCols+` FROM clients WHERE client_id = ?`, clientID))
	return cl, scanErr(err, "client", clientID)
}

func (c *conn) ListClients(ctx context.Context, poolID string) ([]store.Client, error) {
	return list(c, ctx, scanClient, `SELECT `+clientCols+` FROM clients WHERE pool_id = ? ORDER BY client_id`, poolID)
}

func (c *conn) DeleteClient(ctx context.Context, clientID string) error {
	return c.deleteOne(ctx, "client", `DELETE FROM clients WHERE client_id = ?`, clientID)
}

// --- resource servers --------------------------------------------------------------

func (c *conn) PutResourceServer(ctx context.Context, rs store.ResourceServer) error {
	return c.run(ctx, func(c *conn) error {
		_, err := c.exec(ctx, `INSERT INTO resource_servers (pool_id, identifier, name, scopes) VALUES (?,?,?,?)
			ON CONFLICT (pool_id, identifier) DO UPDATE SET name = excluded.name, scopes = excluded.scopes`,
			rs.PoolID, rs.Identifier, rs.Name, strs(rs.Scopes))
		return c.conflictOr(err, "put resource server")
	})
}

func (c *conn) ListResourceServers(ctx context.Context, poolID string) ([]store.ResourceServer, error) {
	return list(c, ctx, func(r scanner) (store.ResourceServer, error) {
		var rs store.ResourceServer
		var sc string
		err := r.Scan(&rs.PoolID, &rs.Identifier, &rs.Name, &sc)
		rs.Scopes = fromJSON[[]string](sc)
		return rs, err
	}, `SELECT pool_id, identifier, name, scopes FROM resource_servers WHERE pool_id = ? ORDER BY identifier`, poolID)
}

func (c *conn) DeleteResourceServer(ctx context.Context, poolID, identifier string) error {
	return c.deleteOne(ctx, "resource server", `DELETE FROM resource_servers WHERE pool_id = ? AND identifier = ?`, poolID, identifier)
}

// --- refresh tokens ------------------------------------------------------------------

const rtCols = `id, pool_id, client_id, username, sub, family_id, scope, auth_time, amr, origin_jti, created_at,
	expires_at, used_at, successor_id, replay, revoked`

func rtArgs(t store.RefreshToken) []any {
	return []any{t.ID, t.PoolID, t.ClientID, t.Username, t.Sub, t.FamilyID, t.Scope, ms(t.AuthTime), strs(t.AMR),
		t.OriginJTI, ms(t.CreatedAt), ms(t.ExpiresAt), ms(t.UsedAt), t.SuccessorID, t.Replay, b2i(t.Revoked)}
}

func scanRT(r scanner) (store.RefreshToken, error) {
	var t store.RefreshToken
	var at, ca, ea, ua int64
	var amr string
	var rev int
	err := r.Scan(&t.ID, &t.PoolID, &t.ClientID, &t.Username, &t.Sub, &t.FamilyID, &t.Scope, &at, &amr, &t.OriginJTI,
		&ca, &ea, &ua, &t.SuccessorID, &t.Replay, &rev)
	t.AuthTime, t.CreatedAt, t.ExpiresAt, t.UsedAt = fromMS(at), fromMS(ca), fromMS(ea), fromMS(ua)
	t.AMR = fromJSON[[]string](amr)
	t.Revoked = rev == 1
	return t, err
}

func (c *conn) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	return c.run(ctx, func(c *conn) error {
		_, err := c.exec(ctx, `INSERT INTO refresh_tokens (`+rtCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, rtArgs(t)...)
		return c.conflictOr(err, "create refresh token")
	})
}

func (c *conn) GetRefreshToken(ctx context.Context, id string) (store.RefreshToken, error) {
	t, err := scanRT(c.row(ctx, `SELECT `+rtCols+` FROM refresh_tokens WHERE id = ?`, id))
	return t, scanErr(err, "refresh token", "…")
}

func (c *conn) UpdateRefreshToken(ctx context.Context, id string, fn func(*store.RefreshToken) error) (store.RefreshToken, error) {
	var out store.RefreshToken
	err := c.run(ctx, func(c *conn) error {
		t, err := c.GetRefreshToken(ctx, id)
		if err != nil {
			return err
		}
		if err := fn(&t); err != nil {
			return err
		}
		a := rtArgs(t)
		_, err = c.exec(ctx, `UPDATE refresh_tokens SET pool_id=?, client_id=?, username=?, sub=?, family_id=?, scope=?,
			auth_time=?, amr=?, origin_jti=?, created_at=?, expires_at=?, used_at=?, successor_id=?, replay=?, revoked=?
			WHERE id=?`, append(a[1:], id)...)
		if err != nil {
			return fmt.Errorf("store: update refresh token: %w", err)
		}
		out = t
		return nil
	})
	return out, err
}

func (c *conn) revokeWhere(ctx context.Context, where string, args ...any) (int, error) {
	var n int64
	err := c.run(ctx, func(c *conn) error {
		res, err := c.exec(ctx, `UPDATE refresh_tokens SET revoked = 1 WHERE revoked = 0 AND `+where, args...)
		if err != nil {
			return fmt.Errorf("store: revoke refresh tokens: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}

func (c *conn) RevokeRefreshFamily(ctx context.Context, familyID string) (int, error) {
	return c.revokeWhere(ctx, `family_id = ?`, familyID)
}

func (c *conn) RevokeUserRefreshTokens(ctx context.Context, poolID, username string) (int, error) {
	return c.revokeWhere(ctx, `pool_id = ? AND username = ?`, poolID, username)
}

// --- sessions ----------------------------------------------------------------------

const sessCols = `id, kind, pool_id, client_id, username, data, created_at, expires_at`

func scanSession(r scanner) (store.Session, error) {
	var s store.Session
	var ca, ea int64
	err := r.Scan(&s.ID, &s.Kind, &s.PoolID, &s.ClientID, &s.Username, &s.Data, &ca, &ea)
	s.CreatedAt, s.ExpiresAt = fromMS(ca), fromMS(ea)
	return s, err
}

func (c *conn) CreateSession(ctx context.Context, s store.Session) error {
	return c.run(ctx, func(c *conn) error {
		_, err := c.exec(ctx, `INSERT INTO sessions (`+sessCols+`) VALUES (?,?,?,?,?,?,?,?)`,
			s.ID, s.Kind, s.PoolID, s.ClientID, s.Username, s.Data, ms(s.CreatedAt), ms(s.ExpiresAt))
		return c.conflictOr(err, "create session")
	})
}

func (c *conn) ConsumeSession(ctx context.Context, id string, now time.Time) (store.Session, error) {
	var out store.Session
	expired := false
	err := c.run(ctx, func(c *conn) error {
		out, expired = store.Session{}, false
		s, err := scanSession(c.row(ctx, `SELECT `+sessCols+` FROM sessions WHERE id = ?`, id))
		if err := scanErr(err, "session", "…"); err != nil {
			return err
		}
		res, err := c.exec(ctx, `DELETE FROM sessions WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("store: consume session: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return notFound("session", "…")
		}
		// An expired session is deleted all the same (committed), then
		// reported as not found.
		expired = !now.Before(s.ExpiresAt)
		out = s
		return nil
	})
	if err == nil && expired {
		return store.Session{}, notFound("session", "… (expired)")
	}
	return out, err
}

func (c *conn) GetSession(ctx context.Context, id string, now time.Time) (store.Session, error) {
	s, err := scanSession(c.row(ctx, `SELECT `+sessCols+` FROM sessions WHERE id = ? AND expires_at > ?`, id, ms(now)))
	return s, scanErr(err, "session", "…")
}

func (c *conn) DeleteSession(ctx context.Context, id string) error {
	return c.deleteOne(ctx, "session", `DELETE FROM sessions WHERE id = ?`, id)
}

// --- one-time markers and counters -----------------------------------------------------

func (c *conn) UseOnce(ctx context.Context, key string, expires, now time.Time) error {
	return c.run(ctx, func(c *conn) error {
		var exp int64
		err := c.row(ctx, `SELECT expires_at FROM one_time WHERE k = ?`, key).Scan(&exp)
		switch {
		case err == nil && exp > ms(now):
			return fmt.Errorf("store: %s already used: %w", key, store.ErrConflict)
		case err == nil:
			_, err = c.exec(ctx, `UPDATE one_time SET expires_at = ? WHERE k = ?`, ms(expires), key)
		case err == sql.ErrNoRows:
			_, err = c.exec(ctx, `INSERT INTO one_time (k, expires_at) VALUES (?, ?)`, key, ms(expires))
		}
		return c.conflictOr(err, "use once")
	})
}

func (c *conn) Incr(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	var n int
	err := c.run(ctx, func(c *conn) error {
		var end int64
		err := c.row(ctx, `SELECT n, window_end FROM counters WHERE k = ?`, key).Scan(&n, &end)
		switch {
		case err == sql.ErrNoRows:
			n = 1
			_, err = c.exec(ctx, `INSERT INTO counters (k, n, window_end) VALUES (?, 1, ?)`, key, ms(now.Add(window)))
		case err != nil:
		case end <= ms(now):
			n = 1
			_, err = c.exec(ctx, `UPDATE counters SET n = 1, window_end = ? WHERE k = ?`, ms(now.Add(window)), key)
		default:
			n++
			_, err = c.exec(ctx, `UPDATE counters SET n = ? WHERE k = ?`, n, key)
		}
		return c.conflictOr(err, "incr")
	})
	return n, err
}

func (c *conn) Count(ctx context.Context, key string, now time.Time) (int, error) {
	var n int
	err := c.row(ctx, `SELECT n FROM counters WHERE k = ? AND window_end > ?`, key, ms(now)).Scan(&n)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: count: %w", err)
	}
	return n, nil
}

func (c *conn) ResetCounter(ctx context.Context, key string) error {
	return c.run(ctx, func(c *conn) error {
		_, err := c.exec(ctx, `DELETE FROM counters WHERE k = ?`, key)
		return c.conflictOr(err, "reset counter")
	})
}

// --- signing keys -------------------------------------------------------------------------

const keyCols = `kid, pool_id, alg, private_sealed, public_jwk, created_at, active_at, retired_at, publish_until`

func scanKey(r scanner) (store.SigningKey, error) {
	var k store.SigningKey
	var ca, aa, ra, pu int64
	err := r.Scan(&k.KID, &k.PoolID, &k.Alg, &k.PrivateSealed, &k.PublicJWK, &ca, &aa, &ra, &pu)
	k.CreatedAt, k.ActiveAt, k.RetiredAt, k.PublishUntil = fromMS(ca), fromMS(aa), fromMS(ra), fromMS(pu)
	return k, err
}

func (c *conn) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	return c.run(ctx, func(c *conn) error {
		_, err := c.exec(ctx, `INSERT INTO signing_keys (`+keyCols+`) VALUES (?,?,?,?,?,?,?,?,?)`, k.KID, k.PoolID, k.Alg,
			k.PrivateSealed, k.PublicJWK, ms(k.CreatedAt), ms(k.ActiveAt), ms(k.RetiredAt), ms(k.PublishUntil))
		return c.conflictOr(err, "create signing key")
	})
}

func (c *conn) ListSigningKeys(ctx context.Context, poolID string) ([]store.SigningKey, error) {
	return list(c, ctx, scanKey, `SELECT `+keyCols+` FROM signing_keys WHERE pool_id = ? ORDER BY created_at, kid`, poolID)
}

func (c *conn) UpdateSigningKey(ctx context.Context, kid string, fn func(*store.SigningKey) error) (store.SigningKey, error) {
	var out store.SigningKey
	err := c.run(ctx, func(c *conn) error {
		k, err := scanKey(c.row(ctx, `SELECT `+keyCols+` FROM signing_keys WHERE kid = ?`, kid))
		if err := scanErr(err, "signing key", kid); err != nil {
			return err
		}
		if err := fn(&k); err != nil {
			return err
		}
		_, err = c.exec(ctx, `UPDATE signing_keys SET private_sealed = ?, active_at = ?, retired_at = ?, publish_until = ? WHERE kid = ?`,
			k.PrivateSealed, ms(k.ActiveAt), ms(k.RetiredAt), ms(k.PublishUntil), kid)
		if err != nil {
			return fmt.Errorf("store: update signing key: %w", err)
		}
		out = k
		return nil
	})
	return out, err
}

func (c *conn) DeleteSigningKey(ctx context.Context, kid string) error {
	return c.deleteOne(ctx, "signing key", `DELETE FROM signing_keys WHERE kid = ?`, kid)
}

// --- codes ------------------------------------------------------------------------------------

func scanCode(r scanner) (store.Code, error) {
	var cd store.Code
	var ca, ea int64
	err := r.Scan(&cd.Key, &cd.CodeHash, &cd.Attempts, &ca, &ea)
	cd.CreatedAt, cd.ExpiresAt = fromMS(ca), fromMS(ea)
	return cd, err
}

func (c *conn) PutCode(ctx context.Context, cd store.Code) error {
	return c.run(ctx, func(c *conn) error {
		_, err := c.exec(ctx, `INSERT INTO codes (k, code_hash, attempts, created_at, expires_at) VALUES (?,?,?,?,?)
			ON CONFLICT (k) DO UPDATE SET code_hash = excluded.code_hash, attempts = excluded.attempts,
			created_at = excluded.created_at, expires_at = excluded.expires_at`,
			cd.Key, cd.CodeHash, cd.Attempts, ms(cd.CreatedAt), ms(cd.ExpiresAt))
		return c.conflictOr(err, "put code")
	})
}

func (c *conn) GetCode(ctx context.Context, key string) (store.Code, error) {
	cd, err := scanCode(c.row(ctx, `SELECT k, code_hash, attempts, created_at, expires_at FROM codes WHERE k = ?`, key))
	return cd, scanErr(err, "code", key)
}

func (c *conn) UpdateCode(ctx context.Context, key string, fn func(*store.Code) error) (store.Code, error) {
	var out store.Code
	err := c.run(ctx, func(c *conn) error {
		cd, err := c.GetCode(ctx, key)
		if err != nil {
			return err
		}
		if err := fn(&cd); err != nil {
			return err
		}
		_, err = c.exec(ctx, `UPDATE codes SET code_hash = ?, attempts = ?, created_at = ?, expires_at = ? WHERE k = ?`,
			cd.CodeHash, cd.Attempts, ms(cd.CreatedAt), ms(cd.ExpiresAt), key)
		if err != nil {
			return fmt.Errorf("store: update code: %w", err)
		}
		out = cd
		return nil
	})
	return out, err
}

func (c *conn) DeleteCode(ctx context.Context, key string) error {
	return c.deleteOne(ctx, "code", `DELETE FROM codes WHERE k = ?`, key)
}

// --- outbox --------------------------------------------------------------------------------------

func (c *conn) EnqueueMail(ctx context.Context, m store.Mail) (int64, error) {
	var id int64
	err := c.run(ctx, func(c *conn) error {
		err := c.row(ctx, `INSERT INTO outbox (to_addr, subject, body, created_at, deliver, next_at) VALUES (?,?,?,?,?,?) RETURNING id`,
			m.To, m.Subject, m.Body, ms(m.CreatedAt), b2i(m.Deliver), ms(m.NextAt)).Scan(&id)
		return c.conflictOr(err, "enqueue mail")
	})
	return id, err
}

const mailCols = `id, to_addr, subject, body, created_at, deliver, attempts, next_at, done_at, last_error`

func scanMail(r scanner) (store.Mail, error) {
	var m store.Mail
	var ca, na, da int64
	var deliver int
	err := r.Scan(&m.ID, &m.To, &m.Subject, &m.Body, &ca, &deliver, &m.Attempts, &na, &da, &m.LastError)
	m.CreatedAt, m.NextAt, m.DoneAt, m.Deliver = fromMS(ca), fromMS(na), fromMS(da), deliver != 0
	return m, err
}

func (c *conn) ListMail(ctx context.Context, afterID int64) ([]store.Mail, error) {
	return list(c, ctx, scanMail, `SELECT `+mailCols+` FROM outbox WHERE id > ? ORDER BY id`, afterID)
}

func (c *conn) ClaimMail(ctx context.Context, now time.Time, lease time.Duration) (store.Mail, bool, error) {
	var m store.Mail
	found := false
	err := c.run(ctx, func(c *conn) error {
		m, found = store.Mail{}, false // a transaction retried starts afresh
		// The row is picked and taken in one statement of one
		// (serializable, on PostgreSQL) transaction: two senders racing
		// for it conflict, and the loser, retried, sees it taken.
		var err error
		m, err = scanMail(c.row(ctx, `UPDATE outbox SET attempts = attempts + 1, next_at = ?
			WHERE id = (SELECT id FROM outbox WHERE deliver = 1 AND done_at = 0 AND next_at <= ? ORDER BY id LIMIT 1)
			RETURNING `+mailCols, ms(now.Add(lease)), ms(now)))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		found = err == nil
		return c.conflictOr(err, "claim mail")
	})
	return m, found, err
}

func (c *conn) RetryMail(ctx context.Context, m store.Mail, next time.Time, why string) error {
	return c.updateMail(ctx, `UPDATE outbox SET next_at = ?, last_error = ? WHERE id = ? AND attempts = ? AND done_at = 0`,
		ms(next), why, m.ID, m.Attempts)
}

func (c *conn) EndMail(ctx context.Context, m store.Mail, now time.Time, why string) error {
	return c.updateMail(ctx, `UPDATE outbox SET done_at = ?, last_error = ?, body = '' WHERE id = ? AND attempts = ? AND done_at = 0`,
		ms(now), why, m.ID, m.Attempts)
}

func (c *conn) ReleaseMail(ctx context.Context, m store.Mail) error {
	return c.updateMail(ctx, `UPDATE outbox SET next_at = 0, attempts = attempts - 1 WHERE id = ? AND attempts = ? AND done_at = 0`,
		m.ID, m.Attempts)
}

// updateMail runs q on one mail still in the claim its caller holds
// (ErrNotFound when there is none: unknown, its delivery ended, or
// claimed again since).
func (c *conn) updateMail(ctx context.Context, q string, args ...any) error {
	return c.run(ctx, func(c *conn) error {
		res, err := c.exec(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("store: update mail: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: update mail: %w", err)
		}
		if n != 1 {
			return notFound("mail")
		}
		return nil
	})
}

// --- audit ------------------------------------------------------------------------------------------

// An audit row holds, as columns, what queries select by (and the chain's
// stream and sequence number), and the rest of the event as one JSON
// object in record: a third of the values a row would otherwise bind,
// which is most of what appending a row costs.
const auditCols = `stream, seq, time, component, outcome, sub, request_id, record`

// auditColumns is how many values one row binds.
const auditColumns = 8

// auditRecord is the JSON in an audit row's record column; absent keys
// are empty values.
type auditRecord struct {
	Action      string          `json:"action"`
	Reason      string          `json:"reason"`
	Explanation string          `json:"explanation"`
	PoolID      string          `json:"pool_id"`
	Username    string          `json:"username"`
	ClientID    string          `json:"client_id"`
	ActorChain  json.RawMessage `json:"actor_chain"` // []string`
	IdentityID  string          `json:"identity_id"`
	Role        string          `json:"role"`
	Resource    string          `json:"resource"`
	TraceID     string          `json:"trace_id"`
	SourceIP    string          `json:"source_ip"`
	PrevHash    string          `json:"prev_hash"` // hex
	Hash        string          `json:"hash"`      // hex
	// Raw holds, by key, the hex of text fields whose bytes JSON cannot
	// carry (not UTF-8): the rows migration 3 moved from SQLite columns.
	Raw map[string]string `json:"raw"`
}

// appendAuditRecord appends e's record JSON to b, leaving out empty
// values. It writes the same JSON as encoding/json for valid UTF-8 (the
// audit writer makes every string valid before it hashes the event),
// without reflection: it runs once per event on a busy writer.
func appendAuditRecord(b []byte, e *store.AuditEvent) []byte {
	open := len(b)
	b = append(b, '{')
	key := func(k string) {
		if len(b) > open+1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
	}
	field := func(k, v string) {
		if v != "" {
			key(k)
			b = appendJSONString(b, v)
		}
	}
	hexField := func(k string, v []byte) {
		if len(v) > 0 {
			key(k)
			b = append(b, '"')
			b = hex.AppendEncode(b, v)
			b = append(b, '"')
		}
	}
	field("action", e.Action)
	field("reason", e.Reason)
	field("explanation", e.Explanation)
	field("pool_id", e.PoolID)
	field("username", e.Username)
	field("client_id", e.ClientID)
	if len(e.ActorChain) > 0 {
		key("actor_chain")
		b = append(b, '[')
		for i, a := range e.ActorChain {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, a)
		}
		b = append(b, ']')
	}
	field("identity_id", e.IdentityID)
	field("role", e.Role)
	field("resource", e.Resource)
	field("trace_id", e.TraceID)
	field("source_ip", e.SourceIP)
	hexField("prev_hash", e.PrevHash)
	hexField("hash", e.Hash)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func scanAudit(r scanner) (store.AuditEvent, error) {
	var e store.AuditEvent
	var t int64
	var record string
	err := r.Scan(&e.ID, &e.Stream, &e.Seq, &t, &e.Component, &e.Outcome, &e.Sub, &e.RequestID, &record)
	if err != nil {
		return e, err
	}
	e.Time = fromMS(t)
	var rec auditRecord
	if err := json.Unmarshal([]byte(record), &rec); err != nil {
		// A record that is not JSON was altered: show what can be shown
		// and let verification find the event's hash does not match.
		rec = auditRecord{Explanation: "unreadable audit record: " + err.Error()}
		e.Malformed = "its record is not JSON"
	}
	if rec.Raw != nil {
		for k, p := range map[string]*string{"action": &rec.Action, "reason": &rec.Reason, "explanation": &rec.Explanation,
			"pool_id": &rec.PoolID, "username": &rec.Username, "client_id": &rec.ClientID, "identity_id": &rec.IdentityID,
			"role": &rec.Role, "resource": &rec.Resource, "trace_id": &rec.TraceID, "source_ip": &rec.SourceIP} {
			if h, ok := rec.Raw[k]; ok {
				if b, err := hex.DecodeString(h); err == nil {
					*p = string(b)
				}
			}
		}
	}
	e.Action, e.Reason, e.Explanation, e.PoolID = rec.Action, rec.Reason, rec.Explanation, rec.PoolID
	e.Username, e.ClientID, e.IdentityID = rec.Username, rec.ClientID, rec.IdentityID
	e.Role, e.Resource, e.TraceID, e.SourceIP = rec.Role, rec.Resource, rec.TraceID, rec.SourceIP
	if len(rec.ActorChain) > 0 {
		// An actor chain that is not a list of strings (only an edit makes
		// one) reads as none: the rest of the event stays readable, and
		// verification finds its hash does not match.
		_ = json.Unmarshal(rec.ActorChain, &e.ActorChain)
	}
	e.PrevHash, _ = hex.DecodeString(rec.PrevHash)
	e.Hash, _ = hex.DecodeString(rec.Hash)
	// A record as a writer wrote it encodes back to the same bytes (the
	// cheap check, true of every row but those migration 3 moved); any
	// other must still hold each key writers write at most once, spelled
	// as they spell it: a key twice, or "Action" for "action", reads as one
	// value here and as another in SQL (record->>'action').
	if e.Malformed == "" && string(appendAuditRecord(nil, &e)) != record {
		e.Malformed = recordKeysProblem([]byte(record), auditRecordKeys)
	}
	return e, nil
}

// auditRecordKeys are the keys of an audit record, and those of its raw
// object.
var auditRecordKeys = map[string]bool{"action": true, "reason": true, "explanation": true, "pool_id": true, "username": true,
	"client_id": true, "actor_chain": true, "identity_id": true, "role": true, "resource": true, "trace_id": true,
	"source_ip": true, "prev_hash": true, "hash": true, "raw": true}

// recordKeysProblem says what is wrong with the keys of the JSON object
// b: one not in keys, or one twice ("" when nothing is). The raw object's
// keys are checked too.
func recordKeysProblem(b []byte, keys map[string]bool) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "its record is not a JSON object"
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		k, ok := t.(string)
		if err != nil || !ok {
			return "its record is not JSON"
		}
		switch {
		case !keys[k]:
			return "its record has a key writers never write: " + strconv.Quote(k)
		case seen[k]:
			return "its record has the key " + strconv.Quote(k) + " twice"
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return "its record is not JSON"
		}
		if k == "raw" {
			if p := recordKeysProblem(v, auditRecordKeys); p != "" {
				return p + " (in raw)"
			}
		}
	}
	return ""
}

// auditChunk bounds the rows of one multi-row INSERT (auditColumns
// parameters each, well under SQLite's and PostgreSQL's parameter limits).
const auditChunk = 200

func (c *conn) AppendAudit(ctx context.Context, events []store.AuditEvent) ([]int64, error) {
	ids := make([]int64, 0, len(events))
	var buf []byte
	var offs []int // where each record of a chunk begins in buf, and its end
	args := make([]any, 0, min(len(events), auditChunk)*auditColumns)
	err := c.run(ctx, func(c *conn) error {
		ids = ids[:0]
		for start := 0; start < len(events); start += auditChunk {
			chunk := events[start:min(start+auditChunk, len(events))]
			var q strings.Builder
			q.WriteString(`INSERT INTO audit_events (` + auditCols + `) VALUES `)
			// The chunk's records are built in one buffer and made one
			// string, each row's a slice of it.
			buf, offs = buf[:0], append(offs[:0], 0)
			for i := range chunk {
				buf = appendAuditRecord(buf, &chunk[i])
				offs = append(offs, len(buf))
			}
			records := string(buf)
			args = args[:0]
			for i := range chunk {
				e := &chunk[i]
				if i > 0 {
					q.WriteByte(',')
				}
				q.WriteString("(?,?,?,?,?,?,?,?)")
				args = append(args, e.Stream, e.Seq, ms(e.Time), e.Component, e.Outcome, e.Sub, e.RequestID, records[offs[i]:offs[i+1]])
			}
			if !c.s.d.Dollar {
				// SQLite: RETURNING would collect the ids in a temporary
				// table, a second b-tree insert per row. The rows of one
				// statement in this (only) write transaction get
				// consecutive rowids, the last one reported.
				res, err := c.execPrepared(ctx, q.String(), args...)
				if err != nil {
					return c.conflictOr(err, "append audit")
				}
				last, err := res.LastInsertId()
				if err != nil {
					return fmt.Errorf("store: append audit: %w", err)
				}
				for k := range chunk {
					ids = append(ids, last-int64(len(chunk)-1-k))
				}
				continue
			}
			q.WriteString(" RETURNING id")
			// One statement per chunk size, parsed once: batches of a busy
			// writer repeat a few sizes.
			rows, err := c.queryPrepared(ctx, q.String(), args...)
			if err != nil {
				return c.conflictOr(err, "append audit")
			}
			var got []int64
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return fmt.Errorf("store: append audit: %w", err)
				}
				got = append(got, id)
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return c.conflictOr(err, "append audit")
			}
			if len(got) != len(chunk) {
				return fmt.Errorf("store: append audit: %d ids for %d rows", len(got), len(chunk))
			}
			// Ids of one statement are assigned in row order: sort them back.
			sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
			ids = append(ids, got...)
		}
		return nil
	})
	return ids, err
}

// The request and subject indexes lead with the row's bucket, 4096
// consecutive rows (migration 4); queries name it as the indexes do.
const (
	auditBucketShift = 12
	auditBucket      = `(id >> 12)`
)

// auditWhere returns the conditions and arguments that select f's events
// (all but Limit).
func auditWhere(f store.AuditFilter) ([]string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	add("id > ?", f.AfterID)
	if f.RequestID != "" {
		add("request_id = ?", f.RequestID)
	}
	if f.Sub != "" {
		add("sub = ?", f.Sub)
	}
	if f.Component != "" {
		add("component = ?", f.Component)
	}
	if f.Outcome != "" {
		add("outcome = ?", f.Outcome)
	}
	if f.Stream != "" {
		add("stream = ?", f.Stream)
	}
	if !f.Since.IsZero() {
		add("time >= ?", ms(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < ?", ms(f.Until))
	}
	return where, args
}

// auditBucketQuery returns the statement that looks up events by request
// id or subject in one bucket (SQLite) or a list of buckets (PostgreSQL),
// its first argument: the indexes lead with the bucket.
func auditBucketQuery(dollar bool, where []string, limit bool) string {
	q := `SELECT id, ` + auditCols + ` FROM audit_events WHERE ` + auditBucket + ` = ? AND `
	if dollar {
		q = `SELECT id, ` + auditCols + ` FROM audit_events WHERE ` + auditBucket + ` = ANY(?) AND `
	}
	q += strings.Join(where, " AND ") + ` ORDER BY id`
	if limit {
		q += ` LIMIT ?`
	}
	return q
}

func (c *conn) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	where, args := auditWhere(f)
	if f.RequestID == "" && f.Sub == "" {
		q := `SELECT id, ` + auditCols + ` FROM audit_events WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id`
		if f.Limit > 0 {
			q += ` LIMIT ?`
			args = append(args, f.Limit)
		}
		return list(c, ctx, scanAudit, q, args...)
	}
	// The request and subject indexes lead with the row's bucket: seek
	// each bucket from the first row after AfterID to the last row, one
	// statement per bucket on SQLite (which runs them in-process) and per
	// 64 buckets on PostgreSQL (one round trip each), stopping once Limit
	// events are found.
	var first, last sql.NullInt64
	err := c.row(ctx, `SELECT (SELECT min(id) FROM audit_events WHERE id > ?), (SELECT max(id) FROM audit_events)`, f.AfterID).Scan(&first, &last)
	if err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	if !first.Valid || !last.Valid {
		return nil, nil
	}
	q := auditBucketQuery(c.s.d.Dollar, where, f.Limit > 0)
	per := int64(1)
	if c.s.d.Dollar {
		per = 64
	}
	args = append([]any{nil}, args...)
	var out []store.AuditEvent
	var buckets []int64
	for b, end := first.Int64>>auditBucketShift, last.Int64>>auditBucketShift; b <= end; b += per {
		if per == 1 {
			args[0] = b
		} else {
			buckets = buckets[:0]
			for k := b; k < b+per && k <= end; k++ {
				buckets = append(buckets, k)
			}
			args[0] = buckets
		}
		if f.Limit > 0 {
			args = append(args[:len(where)+1], f.Limit-len(out))
		}
		rows, err := c.queryPrepared(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("store: list audit: %w", err)
		}
		if out, err = scanAll(rows, scanAudit, out); err != nil {
			return nil, fmt.Errorf("store: list audit: %w", err)
		}
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
	}
	return out, nil
}

func (c *conn) LastAuditID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	if err := c.row(ctx, `SELECT max(id) FROM audit_events`).Scan(&id); err != nil {
		return 0, fmt.Errorf("store: last audit id: %w", err)
	}
	return id.Int64, nil
}

func (c *conn) LastAuditEvent(ctx context.Context, stream string) (store.AuditEvent, error) {
	// The (stream, seq) unique index finds it in one seek.
	evs, err := list(c, ctx, scanAudit, `SELECT id, `+auditCols+` FROM audit_events WHERE stream = ? ORDER BY seq DESC LIMIT 1`, stream)
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("store: last audit event: %w", err)
	}
	if len(evs) == 0 {
		return store.AuditEvent{}, fmt.Errorf("store: last audit event of %s: %w", stream, store.ErrNotFound)
	}
	return evs[0], nil
}

func (c *conn) AuditStreams(ctx context.Context, after string, limit int) ([]string, error) {
	// One seek of the (stream, seq) unique index per stream, skipping its
	// events: the cost is the streams', not the trail's.
	var names []string
	for len(names) < limit {
		var name string
		err := c.row(ctx, `SELECT stream FROM audit_events WHERE stream > ? ORDER BY stream LIMIT 1`, after).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("store: audit streams: %w", err)
		}
		names = append(names, name)
		after = name
	}
	return names, nil
}

func (c *conn) AuditStreamsSince(ctx context.Context, afterID int64) ([]string, error) {
	return list(c, ctx, func(r scanner) (string, error) {
		var name string
		return name, r.Scan(&name)
	}, `SELECT DISTINCT stream FROM audit_events WHERE id > ?`, afterID)
}

// --- identities ------------------------------------------------------------------

func (c *conn) GetOrCreateIdentity(ctx context.Context, poolID, login, newID string, now time.Time) (string, bool, error) {
	var id string
	created := false
	err := c.run(ctx, func(c *conn) error {
		res, err := c.exec(ctx, `INSERT INTO identities (identity_id, pool_id, login, created_at) VALUES (?,?,?,?)
			ON CONFLICT (pool_id, login) DO NOTHING`, newID, poolID, login, ms(now))
		if err != nil {
			return c.conflictOr(err, "create identity")
		}
		n, _ := res.RowsAffected()
		created = n == 1
		return scanErr(c.row(ctx, `SELECT identity_id FROM identities WHERE pool_id = ? AND login = ?`, poolID, login).Scan(&id), "identity", poolID, login)
	})
	return id, created, err
}

func (c *conn) IdentityLogin(ctx context.Context, identityID string) (string, string, error) {
	var pool, login string
	err := c.row(ctx, `SELECT pool_id, login FROM identities WHERE identity_id = ?`, identityID).Scan(&pool, &login)
	return pool, login, scanErr(err, "identity", identityID)
}
