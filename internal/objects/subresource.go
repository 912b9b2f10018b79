package objects

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// unimplementedSubresources are the S3 sub-resources (query keys, with or
// without a value, compared without regard to case) of operations the store
// does not implement: ACLs, tagging, policies, versioning, configuration of
// every kind, object lock, restore, select, attributes. A request naming one
// is refused with 501 NotImplemented before anything else is decided: were
// the key ignored, PUT ?tagging would overwrite the object with the tag XML,
// DELETE ?tagging or ?policy would delete the object or the bucket, and GET
// ?acl would answer the object's bytes.
var unimplementedSubresources = map[string]bool{
	"abac": true, "accelerate": true, "acl": true, "analytics": true, "attributes": true,
	"encryption": true, "intelligent-tiering": true, "inventory": true,
	"legal-hold": true, "lifecycle": true, "logging": true,
	"metadataconfiguration": true, "metadatainventorytable": true, "metadatajournaltable": true, "metadatatable": true,
	"metrics": true, "notification": true, "object-lock": true, "ownershipcontrols": true,
	"policy": true, "policystatus": true, "publicaccessblock": true, "renameobject": true,
	"replication": true, "requestpayment": true, "restore": true, "retention": true,
	"select": true, "select-type": true, "session": true, "tagging": true, "torrent": true,
	"versioning": true, "versions": true, "website": true,
}

// errNotImplemented is S3's answer to a request for functionality it (here:
// the store) does not implement.
func errNotImplemented() *s3Error {
	return s3err(http.StatusNotImplemented, "NotImplemented", "A header you provided implies functionality that is not implemented.")
}

// subresource returns the first sub-resource query key of q the store does
// not implement, or "".
func subresource(q url.Values) string {
	for k := range q {
		if unimplementedSubresources[strings.ToLower(k)] {
			return k
		}
	}
	return ""
}

// hasKey reports whether q has the key k, compared without regard to case.
func hasKey(q url.Values, k string) bool {
	for kk := range q {
		if strings.EqualFold(kk, k) {
			return true
		}
	}
	return false
}

// subresourceUses lists, per method, the implemented sub-resources (query
// keys) a bucket's or an object's operations consume.
var subresourceUses = map[bool]map[string][]string{
	false: { // bucket
		http.MethodGet:  {"uploads"},
		http.MethodPost: {"delete"},
	},
	true: { // object
		http.MethodPut:    {"uploadId", "partNumber"},
		http.MethodPost:   {"uploads", "uploadId"},
		http.MethodGet:    {"uploadId", "partNumber"},
		http.MethodHead:   {"uploadId", "partNumber"},
		http.MethodDelete: {"uploadId"},
	},
}

// misplaced reports whether q names an implemented sub-resource (uploads,
// uploadId, partNumber, delete) that no operation of method on a bucket or
// an object consumes, or names one in another case than S3's: served, it
// would be the base operation instead (PUT ?uploads overwriting the object,
// DELETE ?delete deleting the bucket).
func misplaced(q url.Values, method string, object bool) bool {
	for _, k := range []string{"uploads", "uploadId", "partNumber", "delete"} {
		// A key in another case is no key of the operation either.
		if hasKey(q, k) && (!q.Has(k) || !slices.Contains(subresourceUses[object][method], k)) {
			return true
		}
	}
	return false
}

// getBucketLocation serves GetBucketLocation (GET /bucket?location): the
// region the bucket is in, empty for us-east-1 as S3 answers.
func (h *Handler) getBucketLocation(w http.ResponseWriter, r *http.Request, c *caller, bucket string) error {
	if err := h.authorize(r.Context(), c, "s3:GetBucketLocation", bucket, "", nil); err != nil {
		return err
	}
	if !h.disk.hasBucket(bucket) {
		return errNoSuchBucket()
	}
	region := h.cfg.Region
	if region == "us-east-1" || region == "" {
		region = ""
	}
	return writeXML(w, struct {
		XMLName xml.Name `xml:"LocationConstraint"`
		NS      string   `xml:"xmlns,attr"`
		Region  string   `xml:",chardata"`
	}{NS: s3NS, Region: region})
}

// checkHeaders refuses the request headers that ask for protection the
// store does not give, rather than dropping them: customer-provided keys
// (SSE-C) and KMS encryption are 501 NotImplemented (objects are stored
// as written; x-amz-server-side-encryption: AES256, S3's default, is
// taken); Object Lock is 400 InvalidRequest, as on a bucket without an
// Object Lock configuration (CreateBucket with Object Lock 501); an
// expected bucket owner that is not the account is 403 AccessDenied.
func checkHeaders(r *http.Request, account string) error {
	for name, vs := range r.Header {
		if len(name) < 6 || !strings.EqualFold(name[:6], "x-amz-") {
			continue // most of a request's headers, at no cost
		}
		name = strings.ToLower(name)
		switch {
		case strings.HasPrefix(name, "x-amz-server-side-encryption-customer-"),
			strings.HasPrefix(name, "x-amz-copy-source-server-side-encryption-customer-"),
			name == "x-amz-server-side-encryption-aws-kms-key-id",
			name == "x-amz-server-side-encryption-context",
			name == "x-amz-server-side-encryption" && slices.ContainsFunc(vs, func(v string) bool { return v != "AES256" }):
			return errNotImplemented()
		case strings.HasPrefix(name, "x-amz-object-lock-"):
			return s3err(http.StatusBadRequest, "InvalidRequest", "Bucket is missing Object Lock Configuration")
		case name == "x-amz-bucket-object-lock-enabled" && slices.ContainsFunc(vs, func(v string) bool { return strings.EqualFold(v, "true") }):
			return errNotImplemented() // CreateBucket with Object Lock
		case name == "x-amz-expected-bucket-owner", name == "x-amz-source-expected-bucket-owner":
			if slices.ContainsFunc(vs, func(v string) bool { return v != account }) {
				return errAccessDenied
			}
		}
	}
	return nil
}
