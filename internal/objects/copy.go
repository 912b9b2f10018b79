package objects

import (
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// s3Time is the timestamp form S3 uses in XML bodies.
const s3Time = "2006-01-02T15:04:05.000Z"

var errPrecondition = s3err(http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")

// copySource parses x-amz-copy-source: "bucket/key" URL-encoded, with an
// optional leading slash and an optional ?versionId=, which must be "null"
// (buckets are not versioned).
func copySource(v string) (bucket, key string, err error) {
	v = strings.TrimPrefix(v, "/")
	if i := strings.Index(v, "?"); i >= 0 {
		q, qerr := url.ParseQuery(v[i+1:])
		if vid, ok := q["versionId"]; qerr != nil || ok && (len(vid) != 1 || vid[0] != "null") {
			return "", "", errInvalidVersion()
		}
		v = v[:i]
	}
	p, uerr := url.PathUnescape(v)
	bucket, key, _ = strings.Cut(p, "/")
	if uerr != nil || bucket == "" || key == "" {
		return "", "", s3err(http.StatusBadRequest, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	return bucket, key, nil
}

// errInvalidVersion answers a version id other than "null": buckets are not
// versioned.
func errInvalidVersion() *s3Error {
	return s3err(http.StatusBadRequest, "InvalidArgument", "Invalid version id specified")
}

// etagMatches reports whether an If-Match / If-None-Match value (a list of
// quoted or bare ETags, or *) names etag.
func etagMatches(cond, etag string) bool {
	want := strings.Trim(etag, `"`)
	for _, c := range strings.Split(cond, ",") {
		c = strings.TrimPrefix(strings.TrimSpace(c), "W/")
		if c == "*" || strings.Trim(c, `"`) == want {
			return true
		}
	}
	return false
}

// copyConditions applies the x-amz-copy-source-if-* headers as S3 does:
// if-match true makes if-unmodified-since irrelevant, if-none-match false
// makes if-modified-since irrelevant; any failing condition is a 412.
func copyConditions(r *http.Request, m meta) error {
	lm := m.LastModified.Truncate(time.Second)
	if v := r.Header.Get("X-Amz-Copy-Source-If-Match"); v != "" {
		if !etagMatches(v, m.ETag) {
			return errPrecondition
		}
	} else if t, err := http.ParseTime(r.Header.Get("X-Amz-Copy-Source-If-Unmodified-Since")); err == nil && lm.After(t) {
		return errPrecondition
	}
	if v := r.Header.Get("X-Amz-Copy-Source-If-None-Match"); v != "" {
		if etagMatches(v, m.ETag) {
			return errPrecondition
		}
	} else if t, err := http.ParseTime(r.Header.Get("X-Amz-Copy-Source-If-Modified-Since")); err == nil && !lm.After(t) {
		return errPrecondition
	}
	return nil
}

// copyObject serves CopyObject (PUT with x-amz-copy-source): s3:GetObject on
// the source and s3:PutObject on the destination, then the bytes are written
// as a new object (temporary file, fsync, rename), never a partial one.
func (h *Handler) copyObject(w http.ResponseWriter, r *http.Request, c *caller, bucket, key string) error {
	ctx := r.Context()
	if len(key) > 1024 {
		return s3err(http.StatusBadRequest, "KeyTooLongError", "Your key is too long")
	}
	sb, sk, err := copySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	directive := r.Header.Get("X-Amz-Metadata-Directive")
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return s3err(http.StatusBadRequest, "InvalidArgument", "Unknown metadata directive.")
	}
	if err := h.authorize(ctx, c, "s3:GetObject", sb, sk, nil); err != nil {
		return err
	}
	if err := h.authorize(ctx, c, "s3:PutObject", bucket, key, nil); err != nil {
		return err
	}
	// The destination's If-None-Match: * and If-Match hold as for a
	// PutObject, checked again under the write lock.
	cond, err := writeConditions(r, bucket, key)
	if err != nil {
		return err
	}
	if !h.disk.hasBucket(sb) || !h.disk.hasBucket(bucket) {
		return errNoSuchBucket()
	}
	if sb == bucket && sk == key && directive != "REPLACE" {
		return s3err(http.StatusBadRequest, "InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	f, sm, err := h.disk.open(sb, sk)
	switch {
	case errors.Is(err, errNoBucket):
		return errNoSuchBucket()
	case errors.Is(err, errNoKey):
		// As for GetObject: a missing key is named only to who may list.
		if h.authorize(ctx, c, "s3:ListBucket", sb, "", map[string]string{"s3:prefix": sk}) != nil {
			return errAccessDenied
		}
		return errNoSuchKey(sb, sk)
	case err != nil:
		return err
	}
	defer f.Close()
	if err := copyConditions(r, sm); err != nil {
		return err
	}
	if sm.Size > h.maxSize {
		return s3err(http.StatusBadRequest, "InvalidRequest", "The specified copy source is larger than the maximum allowable size for a copy source")
	}
	// COPY keeps the source's metadata; REPLACE stores the request's.
	m := meta{ContentType: sm.ContentType, UserMeta: sm.UserMeta, Headers: sm.Headers}
	if directive == "REPLACE" {
		if m, err = requestMeta(r); err != nil {
			return err
		}
	}
	m.LastModified = h.opts.Now().UTC()
	if sm.Checksum != nil && sm.Checksum.Type == "FULL_OBJECT" {
		m.Checksum = sm.Checksum // the same bytes; a composite one belongs to the source's parts
	}
	nm, err := h.disk.put(bucket, key, f, m, nil, cond)
	if errors.Is(err, errNoBucket) {
		return errNoSuchBucket()
	}
	if err != nil {
		return err
	}
	return writeXML(w, struct {
		XMLName      xml.Name `xml:"CopyObjectResult"`
		NS           string   `xml:"xmlns,attr"`
		ETag         string   `xml:"ETag"`
		LastModified string   `xml:"LastModified"`
	}{NS: s3NS, ETag: nm.ETag, LastModified: nm.LastModified.UTC().Truncate(time.Second).Format(s3Time)}) // whole seconds, as HeadObject's
}
