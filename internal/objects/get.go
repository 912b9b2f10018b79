package objects

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// getObject serves GetObject and HeadObject: the conditions of getConditions
// (a failing one is 412 PreconditionFailed or 304), then the object, or the
// single byte range a valid Range header asks for (206; 416 InvalidRange
// when the range starts past the end). A Range header S3 ignores (not
// bytes=, malformed, or several ranges: S3 never answers
// multipart/byteranges) is ignored: the whole object is served, with the
// Content-Type, storedHeaders and user metadata stored with it. The
// response-* query parameters override the headers served (see overrides).
// q is r's query, as route parsed it.
func (h *Handler) getObject(w http.ResponseWriter, r *http.Request, c *caller, bucket, key string, q url.Values) error {
	over, err := overrides(q, c)
	if err != nil {
		return err
	}
	f, m, err := h.disk.open(bucket, key)
	switch {
	case errors.Is(err, errNoBucket):
		return errNoSuchBucket()
	case errors.Is(err, errNoKey):
		// Say the key is missing only to callers who may list the bucket.
		if h.authorize(r.Context(), c, "s3:ListBucket", bucket, "", map[string]string{"s3:prefix": key}) != nil {
			return errAccessDenied
		}
		return errNoSuchKey(bucket, key)
	case err != nil:
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	hd := w.Header()
	ct := m.ContentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	hd.Set("ETag", m.ETag)
	hd.Set("Last-Modified", m.LastModified.UTC().Format(http.TimeFormat))
	hd.Set("Accept-Ranges", "bytes")
	for k, v := range m.UserMeta {
		hd.Set("x-amz-meta-"+k, v)
	}
	if notModified, err := getConditions(r, m); err != nil {
		return err
	} else if notModified {
		// With the cache headers a 200 would carry (RFC 9110 §15.4.5).
		for _, k := range [...]string{"Cache-Control", "Expires"} {
			if v := cmp.Or(over[k], m.Headers[k]); v != "" {
				hd.Set(k, v)
			}
		}
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	var start, n int64
	var ranged bool
	if pn := q.Get("partNumber"); pn != "" {
		start, n, err = partRange(r, m, size, pn)
		if err != nil {
			return err
		}
		ranged = n > 0 // an empty object's one part is all of it
		if len(m.Parts) > 0 {
			hd.Set("x-amz-mp-parts-count", strconv.Itoa(len(m.Parts))) // S3 sends none for an object put whole
		}
	} else if start, n, ranged, err = byteRange(r, m, size); err != nil {
		hd.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		return err
	}
	hd.Set("Content-Type", ct)
	for _, k := range storedHeaders {
		if v := m.Headers[k]; v != "" {
			hd.Set(k, v)
		}
	}
	for k, v := range over {
		hd.Set(k, v)
	}
	if c := m.Checksum; c != nil && !ranged && q.Get("partNumber") == "" && strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		// The whole object's checksum, as its write gave it (S3 sends
		// none for a range).
		hd.Set("x-amz-checksum-"+c.Alg, c.Value)
		hd.Set("x-amz-checksum-type", c.Type)
	}
	hd.Set("Content-Length", strconv.FormatInt(n, 10))
	if ranged {
		hd.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+n-1, size))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	if r.Method != http.MethodHead {
		io.Copy(w, io.NewSectionReader(f, start, n)) // an error here can only cut the response short
	}
	return nil
}

// responseHeaders are the query parameters of GetObject and HeadObject
// that set a response header, and the header each sets.
var responseHeaders = [...]struct{ param, header string }{
	{"response-content-type", "Content-Type"},
	{"response-content-language", "Content-Language"},
	{"response-expires", "Expires"},
	{"response-cache-control", "Cache-Control"},
	{"response-content-disposition", "Content-Disposition"},
	{"response-content-encoding", "Content-Encoding"},
}

// overrides returns the headers the response-* parameters of q ask a
// successful GetObject or HeadObject to serve instead of the stored ones
// (what is stored is unchanged). S3 refuses them on anonymous requests
// (InvalidRequest); a value no header may carry (a control byte: CR or LF
// would end the header) is InvalidArgument.
func overrides(q url.Values, c *caller) (map[string]string, error) {
	over := map[string]string{}
	for _, p := range responseHeaders {
		v := q.Get(p.param)
		if v == "" {
			continue
		}
		if c.who == anonymousID {
			return nil, s3err(http.StatusBadRequest, "InvalidRequest", "Request specific response headers cannot be used for anonymous GET requests.")
		}
		if badValue(v) {
			return nil, s3err(http.StatusBadRequest, "InvalidArgument", "Invalid value for "+p.param)
		}
		over[p.header] = v
	}
	return over, nil
}

// badValue reports whether v holds a byte no header value may carry: a
// control byte other than tab (CR or LF would end the header).
func badValue(v string) bool {
	return strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f })
}

// partRange is the byte range of part pn of the object (GetObject and
// HeadObject ?partNumber, as multipart downloaders ask): an object put
// whole is its one part. With a Range header too it is InvalidRequest; a
// part past the last is 416 InvalidPartNumber. A multipart object stored
// before part sizes were kept has none: 501, rather than wrong bytes.
func partRange(r *http.Request, m meta, size int64, pn string) (start, n int64, err error) {
	num, perr := strconv.Atoi(pn)
	switch {
	case perr != nil || num < 1 || num > maxParts:
		return 0, 0, s3err(http.StatusBadRequest, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
	case r.Header.Get("Range") != "":
		return 0, 0, s3err(http.StatusBadRequest, "InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
	case len(m.Parts) == 0 && strings.Contains(m.ETag, "-"):
		return 0, 0, errNotImplemented()
	}
	parts := m.Parts
	if len(parts) == 0 {
		parts = []int64{size}
	}
	if num > len(parts) {
		return 0, 0, s3err(http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber", "The requested partnumber is not satisfiable")
	}
	for _, p := range parts[:num-1] {
		start += p
	}
	return start, parts[num-1], nil
}

// getConditions applies GetObject's If-Match, If-Unmodified-Since,
// If-None-Match and If-Modified-Since as S3 does (RFC 7232, section 6): a
// failing If-Match (or, without If-Match, If-Unmodified-Since) is 412
// PreconditionFailed; then a matching If-None-Match (or, without it, an
// If-Modified-Since the object is not newer than) is 304, notModified.
// ETags compare as etagMatches does: lists, quoted or bare, and *.
func getConditions(r *http.Request, m meta) (notModified bool, err error) {
	lm := m.LastModified.Truncate(time.Second)
	if v := r.Header.Get("If-Match"); v != "" {
		if !etagMatches(v, m.ETag) {
			return false, errPrecondition
		}
	} else if t, err := http.ParseTime(r.Header.Get("If-Unmodified-Since")); err == nil && lm.After(t) {
		return false, errPrecondition
	}
	if v := r.Header.Get("If-None-Match"); v != "" {
		return etagMatches(v, m.ETag), nil
	}
	if t, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !lm.After(t) {
		return true, nil
	}
	return false, nil
}

func errInvalidRange() *s3Error {
	return s3err(http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable")
}

// byteRange returns the part of an object of size bytes a GetObject serves:
// the range of its Range header (ranged), or all of it. A range that starts
// at or past the end (or a suffix of zero bytes, or any range of an empty
// object) is 416 InvalidRange; a Range header that is not one valid
// bytes= range, or an If-Range the object does not match, is ignored.
func byteRange(r *http.Request, m meta, size int64) (start, n int64, ranged bool, err error) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(r.Header.Get("Range")), "bytes=")
	if !ok || strings.Contains(spec, ",") || !ifRange(r.Header.Get("If-Range"), m) {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, size, false, nil
	}
	if first == "" { // bytes=-N: the last N bytes
		suffix, ok := decimal(last)
		switch {
		case !ok:
			return 0, size, false, nil
		case suffix == 0 || size == 0:
			return 0, 0, false, errInvalidRange()
		}
		start = max(size-suffix, 0)
		return start, size - start, true, nil
	}
	start, ok = decimal(first)
	if !ok {
		return 0, size, false, nil
	}
	end := size - 1
	if last != "" {
		if end, ok = decimal(last); !ok || end < start {
			return 0, size, false, nil // malformed: S3 ignores it
		}
	}
	if start >= size {
		return 0, 0, false, errInvalidRange()
	}
	end = min(end, size-1)
	return start, end - start + 1, true, nil
}

// ifRange reports whether a Range applies under If-Range v (RFC 7233,
// section 3.2): always without one, else when v is the object's ETag
// (compared strongly) or its Last-Modified date.
func ifRange(v string, m meta) bool {
	if v == "" {
		return true
	}
	if strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "W/") {
		return v == m.ETag
	}
	t, err := http.ParseTime(v)
	return err == nil && t.Equal(m.LastModified.Truncate(time.Second))
}

// decimal parses a non-negative decimal number of digits only.
func decimal(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
