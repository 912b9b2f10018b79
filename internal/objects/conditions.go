package objects

import (
	"errors"
	"net/http"
	"strings"
)

// writeConditions returns the check of a conditional PutObject's If-Match
// and If-None-Match headers (nil when it has neither), as S3 makes them:
// If-None-Match: * fails with 412 when the key exists; If-Match fails with
// 412 when the current object's ETag is not one it names (etagMatches: a
// list, quoted or bare, or *), and with 404 NoSuchKey when there is no
// object. If-None-Match with anything but * is not implemented (S3 answers
// 501 too). The check runs in disk.put under the store's write lock, so
// that of two concurrent If-None-Match: * writes of one key exactly one
// succeeds.
func writeConditions(r *http.Request, bucket, key string) (func(cur meta, err error) error, error) {
	im, inm := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	if im == "" && inm == "" {
		return nil, nil
	}
	if inm != "" && strings.TrimSpace(inm) != "*" {
		return nil, errNotImplemented()
	}
	return func(cur meta, err error) error {
		if err != nil && !errors.Is(err, errNoKey) {
			return err
		}
		exists := err == nil
		if im != "" {
			if !exists {
				return errNoSuchKey(bucket, key)
			}
			if !etagMatches(im, cur.ETag) {
				return errPrecondition
			}
		}
		if inm != "" && exists {
			return errPrecondition
		}
		return nil
	}, nil
}
