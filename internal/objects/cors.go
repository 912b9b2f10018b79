package objects

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Bucket CORS (PutBucketCors, GetBucketCors, DeleteBucketCors) and its
// evaluation, as S3 does it: a preflight (OPTIONS with Origin and
// Access-Control-Request-Method) is answered, unauthenticated, from the
// first rule of the bucket's configuration that allows the origin, the
// method and every requested header; an actual request whose Origin and
// method a rule allows gets that rule's CORS headers on its answer,
// whatever the answer (errors too).

// corsConfig is a bucket's CORSConfiguration document.
type corsConfig struct {
	XMLName xml.Name   `xml:"CORSConfiguration"`
	NS      string     `xml:"xmlns,attr,omitempty"`
	Rules   []corsRule `xml:"CORSRule"`
}

// corsRule is one CORSRule, its elements in S3's order.
type corsRule struct {
	ID             string   `xml:"ID,omitempty"`
	AllowedHeaders []string `xml:"AllowedHeader"`
	AllowedMethods []string `xml:"AllowedMethod"`
	AllowedOrigins []string `xml:"AllowedOrigin"`
	ExposeHeaders  []string `xml:"ExposeHeader"`
	MaxAgeSeconds  *int     `xml:"MaxAgeSeconds"`
}

const (
	// maxCORSRules and maxCORSBody are S3's limits on a configuration:
	// 100 rules, 64 KB.
	maxCORSRules = 100
	maxCORSBody  = 64 << 10
	// corsFile is the configuration's file in the bucket's directory:
	// neither object metadata (.json) nor data (.data), so listing,
	// sweeping and the emptiness check of DeleteBucket pass it by, and
	// it goes with the bucket when the bucket is deleted (as on S3).
	corsFile = ".cors.xml"
)

// corsMethods are the methods a CORSRule may allow.
var corsMethods = []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodHead}

// parseCORS parses and validates a PutBucketCors body as S3 does.
func parseCORS(body []byte) (*corsConfig, error) {
	var c corsConfig
	if err := xml.Unmarshal(body, &c); err != nil || len(c.Rules) == 0 {
		return nil, errMalformedXML()
	}
	if len(c.Rules) > maxCORSRules {
		return nil, s3err(http.StatusBadRequest, "MalformedXML", fmt.Sprintf("The number of CORS rules should not exceed allowed limit of %d rules.", maxCORSRules))
	}
	invalid := func(format string, args ...any) error {
		return s3err(http.StatusBadRequest, "InvalidRequest", fmt.Sprintf(format, args...))
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		if len(r.AllowedMethods) == 0 || len(r.AllowedOrigins) == 0 || len(r.ID) > 255 {
			return nil, errMalformedXML()
		}
		if r.MaxAgeSeconds != nil && *r.MaxAgeSeconds < 0 {
			return nil, errMalformedXML()
		}
		for j, m := range r.AllowedMethods {
			m = strings.TrimSpace(m)
			if !slices.Contains(corsMethods, m) {
				return nil, invalid("Found unsupported HTTP method in CORS config. Unsupported method is %s", m)
			}
			r.AllowedMethods[j] = m
		}
		for j, o := range r.AllowedOrigins {
			o = strings.TrimSpace(o)
			if o == "" {
				return nil, errMalformedXML()
			}
			if strings.Count(o, "*") > 1 {
				return nil, invalid("AllowedOrigin %q can not have more than one wildcard.", o)
			}
			r.AllowedOrigins[j] = o
		}
		for j, hd := range r.AllowedHeaders {
			hd = strings.TrimSpace(hd)
			if strings.Count(hd, "*") > 1 {
				return nil, invalid("AllowedHeader %q can not have more than one wildcard.", hd)
			}
			r.AllowedHeaders[j] = hd
		}
		for j, hd := range r.ExposeHeaders {
			hd = strings.TrimSpace(hd)
			if strings.Contains(hd, "*") {
				return nil, invalid("ExposeHeader %q contains wildcard. We currently do not support wildcard for ExposeHeader.", hd)
			}
			r.ExposeHeaders[j] = hd
		}
	}
	c.NS = s3NS
	return &c, nil
}

// wildcardMatch matches s against pattern, which holds at most one "*"
// standing for any (possibly empty) string.
func wildcardMatch(pattern, s string) bool {
	pre, suf, ok := strings.Cut(pattern, "*")
	if !ok {
		return pattern == s
	}
	return len(s) >= len(pre)+len(suf) && strings.HasPrefix(s, pre) && strings.HasSuffix(s, suf)
}

// allowsOrigin returns the AllowedOrigin of r matching origin ("" when none does).
func (r *corsRule) allowsOrigin(origin string) string {
	for _, o := range r.AllowedOrigins {
		if wildcardMatch(o, origin) {
			return o
		}
	}
	return ""
}

// allowsHeader reports whether an AllowedHeader of r matches the header
// name h (case ignored).
func (r *corsRule) allowsHeader(h string) bool {
	for _, a := range r.AllowedHeaders {
		if wildcardMatch(strings.ToLower(a), strings.ToLower(h)) {
			return true
		}
	}
	return false
}

// match returns the first rule allowing origin, method and every one of
// headers, with the AllowedOrigin that matched.
func (c *corsConfig) match(origin, method string, headers []string) (*corsRule, string) {
	for i := range c.Rules {
		r := &c.Rules[i]
		o := r.allowsOrigin(origin)
		if o == "" || !slices.Contains(r.AllowedMethods, method) {
			continue
		}
		if !slices.ContainsFunc(headers, func(h string) bool { return !r.allowsHeader(h) }) {
			return r, o
		}
	}
	return nil, ""
}

// setCORSHeaders sets on hdr the answer of rule r, matched by origin
// through its AllowedOrigin o.
func setCORSHeaders(hdr http.Header, r *corsRule, o, origin string) {
	if o == "*" {
		hdr.Set("Access-Control-Allow-Origin", "*")
	} else {
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Set("Access-Control-Allow-Credentials", "true")
	}
	hdr.Set("Access-Control-Allow-Methods", strings.Join(r.AllowedMethods, ", "))
	if len(r.ExposeHeaders) > 0 {
		hdr.Set("Access-Control-Expose-Headers", strings.Join(r.ExposeHeaders, ", "))
	}
	if r.MaxAgeSeconds != nil {
		hdr.Set("Access-Control-Max-Age", strconv.Itoa(*r.MaxAgeSeconds))
	}
	hdr.Set("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method")
}

// requestHeaders are the header names of an Access-Control-Request-Headers
// value, lower-case.
func requestHeaders(v string) []string {
	var out []string
	for _, h := range strings.Split(v, ",") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			out = append(out, h)
		}
	}
	return out
}

func (d *disk) corsPath(b string) string { return filepath.Join(d.bucketDir(b), corsFile) }

// cors returns the bucket's CORS configuration, nil when it has none.
func (d *disk) cors(b string) (*corsConfig, error) {
	if !validBucket(b) {
		return nil, nil
	}
	body, err := os.ReadFile(d.corsPath(b))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c corsConfig
	if err := xml.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("objects: corrupt CORS configuration of %s: %w", b, err)
	}
	return &c, nil
}

// putCORS stores the bucket's CORS configuration durably (replacing it
// atomically); under the write lock, so that it never lands in a bucket
// DeleteBucket is removing.
func (d *disk) putCORS(b string, c *corsConfig) error {
	body, err := xml.Marshal(c)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.hasBucket(b) {
		return errNoBucket
	}
	if err := writeFileAtomic(d.corsPath(b), append([]byte(xml.Header), body...)); err != nil {
		return err
	}
	syncDir(d.bucketDir(b))
	return nil
}

// deleteCORS removes the bucket's CORS configuration (none is no error).
func (d *disk) deleteCORS(b string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.hasBucket(b) {
		return errNoBucket
	}
	if err := os.Remove(d.corsPath(b)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	syncDir(d.bucketDir(b))
	return nil
}

// bucketCORS serves PutBucketCors, GetBucketCors and DeleteBucketCors
// (?cors on the bucket). S3 authorizes DeleteBucketCors as s3:PutBucketCORS.
func (h *Handler) bucketCORS(w http.ResponseWriter, r *http.Request, c *caller, bucket string) error {
	ctx := r.Context()
	switch r.Method {
	case http.MethodPut:
		if err := h.authorize(ctx, c, "s3:PutBucketCORS", bucket, "", nil); err != nil {
			return err
		}
		if r.Header.Get("Content-MD5") == "" {
			if alg, _, err := requestChecksum(r); err != nil {
				return err
			} else if alg == "" && r.Header.Get("X-Amz-Trailer") == "" { // a trailing checksum is checked once read
				return s3err(http.StatusBadRequest, "InvalidRequest", "Missing required header for this request: Content-MD5 OR x-amz-checksum-*")
			}
		}
		body, err := readSmall(r, maxCORSBody, errMalformedXML(), true)
		if err != nil {
			return err
		}
		if len(body) == 0 {
			return s3err(http.StatusBadRequest, "MissingRequestBodyError", "Request Body is empty")
		}
		cfg, err := parseCORS(body)
		if err != nil {
			return err
		}
		if err := h.disk.putCORS(bucket, cfg); errors.Is(err, errNoBucket) {
			return errNoSuchBucket()
		} else if err != nil {
			return err
		}
		return nil
	case http.MethodGet:
		if err := h.authorize(ctx, c, "s3:GetBucketCORS", bucket, "", nil); err != nil {
			return err
		}
		if !h.disk.hasBucket(bucket) {
			return errNoSuchBucket()
		}
		cfg, err := h.disk.cors(bucket)
		if err != nil {
			return err
		}
		if cfg == nil {
			return &s3Error{status: http.StatusNotFound, code: "NoSuchCORSConfiguration", message: "The CORS configuration does not exist", resource: bucket}
		}
		cfg.NS = s3NS
		return writeXML(w, cfg)
	case http.MethodDelete:
		if err := h.authorize(ctx, c, "s3:PutBucketCORS", bucket, "", nil); err != nil {
			return err
		}
		if err := h.disk.deleteCORS(bucket); errors.Is(err, errNoBucket) {
			return errNoSuchBucket()
		} else if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return s3err(http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
}

// corsForbidden is S3's refusal of a preflight.
func corsForbidden(method, resourceType, msg string) *s3Error {
	return &s3Error{status: http.StatusForbidden, code: "AccessForbidden", message: "CORSResponse: " + msg, method: method, resourceType: resourceType}
}

// preflight answers a CORS preflight (OPTIONS) on a bucket or an object,
// unauthenticated, as S3 does.
func (h *Handler) preflight(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	origin := r.Header.Get("Origin")
	method := r.Header.Get("Access-Control-Request-Method")
	rt := "OBJECT"
	if key == "" {
		rt = "BUCKET"
	}
	switch {
	case origin == "":
		return s3err(http.StatusBadRequest, "BadRequest", "Insufficient information. Origin request header needed.")
	case method == "":
		return s3err(http.StatusBadRequest, "BadRequest", "Invalid Access-Control-Request-Method: null")
	case !slices.Contains(corsMethods, method):
		return s3err(http.StatusBadRequest, "BadRequest", "Invalid Access-Control-Request-Method: "+method)
	}
	if !h.disk.hasBucket(bucket) {
		return corsForbidden(method, rt, "Bucket not found")
	}
	cfg, err := h.disk.cors(bucket)
	if err != nil {
		return err
	}
	if cfg == nil {
		return corsForbidden(method, rt, "CORS is not enabled for this bucket.")
	}
	headers := requestHeaders(strings.Join(r.Header.Values("Access-Control-Request-Headers"), ","))
	rule, o := cfg.match(origin, method, headers)
	if rule == nil {
		return corsForbidden(method, rt, "This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.")
	}
	setCORSHeaders(w.Header(), rule, o, origin)
	if len(headers) > 0 {
		w.Header().Set("Access-Control-Allow-Headers", strings.Join(headers, ", "))
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// actualCORS sets on an actual (not preflight) request's answer the CORS
// headers of the first rule of the bucket allowing its Origin and method;
// nothing when there is no Origin or no such rule.
func (h *Handler) actualCORS(w http.ResponseWriter, r *http.Request, bucket string) {
	origin := r.Header.Get("Origin")
	if origin == "" || bucket == "" {
		return
	}
	cfg, err := h.disk.cors(bucket)
	if err != nil || cfg == nil {
		return
	}
	if rule, o := cfg.match(origin, r.Method, nil); rule != nil {
		setCORSHeaders(w.Header(), rule, o, origin)
	}
}
