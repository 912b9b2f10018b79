package objects

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"os"
	"strings"
)

var errNotEmpty = errors.New("objects: bucket not empty")

// hasBucket reports whether b is an existing bucket. The name is checked
// first: "." or ".." would name the store's root or the data directory.
func (d *disk) hasBucket(b string) bool { return validBucket(b) && d.bucketExists(b) }

func errNoSuchBucket() *s3Error {
	return s3err(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
}

func errNoSuchKey(bucket, key string) *s3Error {
	return &s3Error{status: http.StatusNotFound, code: "NoSuchKey", message: "The specified key does not exist.", resource: "/" + bucket + "/" + key, key: key}
}

func errMalformedXML() *s3Error {
	return s3err(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
}

// deleteBucket serves DeleteBucket: 204, or 409 BucketNotEmpty while the
// bucket holds an object. Multipart uploads still in progress go with it.
func (h *Handler) deleteBucket(w http.ResponseWriter, r *http.Request, c *caller, bucket string) error {
	if err := h.authorize(r.Context(), c, "s3:DeleteBucket", bucket, "", nil); err != nil {
		return err
	}
	switch err := h.disk.deleteBucket(bucket); {
	case errors.Is(err, errNoBucket):
		return errNoSuchBucket()
	case errors.Is(err, errNotEmpty):
		return &s3Error{status: http.StatusConflict, code: "BucketNotEmpty", message: "The bucket you tried to delete is not empty", resource: "/" + bucket}
	case err != nil:
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteBucket removes an empty bucket. Under the write lock no object can
// appear between the check and the removal (a write racing it fails).
func (d *disk) deleteBucket(b string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.hasBucket(b) {
		return errNoBucket
	}
	dir := d.bucketDir(b)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			return errNotEmpty // an object (or metadata we cannot read: keep it)
		}
	}
	return os.RemoveAll(dir)
}

// maxDeleteKeys and maxDeleteBody bound a DeleteObjects request.
const (
	maxDeleteKeys = 1000
	maxDeleteBody = 8 << 20
)

type deleteRequest struct {
	XMLName xml.Name `xml:"Delete"`
	Objects []struct {
		Key       *string `xml:"Key"`
		VersionID string  `xml:"VersionId"`
		ETag      string  `xml:"ETag"` // delete only if the object's ETag is this
		// Directory buckets' conditions, which S3 refuses elsewhere.
		LastModifiedTime string `xml:"LastModifiedTime"`
		Size             string `xml:"Size"`
	} `xml:"Object"`
	Quiet bool `xml:"Quiet"`
}

type deletedXML struct {
	Key string `xml:"Key"`
}

type deleteErrorXML struct {
	Key     string `xml:"Key"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// deleteObjects serves DeleteObjects (POST /bucket?delete): each key is
// authorized as s3:DeleteObject on its own, so the keys the policy refuses
// come back as AccessDenied errors and the others are still deleted.
func (h *Handler) deleteObjects(w http.ResponseWriter, r *http.Request, c *caller, bucket string) error {
	if r.Header.Get("Content-MD5") == "" {
		if alg, _, err := requestChecksum(r); err != nil {
			return err
		} else if alg == "" {
			return s3err(http.StatusBadRequest, "InvalidRequest", "Missing required header for this request: Content-MD5 OR x-amz-checksum-*")
		}
	}
	body, err := readSmall(r, maxDeleteBody, errMalformedXML(), true)
	if err != nil {
		return err
	}
	var req deleteRequest
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Objects) == 0 || len(req.Objects) > maxDeleteKeys {
		return errMalformedXML()
	}
	for _, o := range req.Objects {
		if o.Key == nil || *o.Key == "" {
			return errMalformedXML()
		}
	}
	if !h.disk.hasBucket(bucket) {
		return errNoSuchBucket()
	}
	res := struct {
		XMLName xml.Name         `xml:"DeleteResult"`
		NS      string           `xml:"xmlns,attr"`
		Deleted []deletedXML     `xml:"Deleted"`
		Errors  []deleteErrorXML `xml:"Error"`
	}{NS: s3NS}
	for _, o := range req.Objects {
		key := *o.Key
		var se *s3Error
		switch {
		case len(key) > 1024:
			se = s3err(http.StatusBadRequest, "KeyTooLongError", "Your key is too long")
		case o.VersionID != "" && o.VersionID != "null":
			se = errInvalidVersion() // not the current object's version
		case o.LastModifiedTime != "" || o.Size != "":
			se = errNotImplemented()
		default:
			err := h.deleteOne(r.Context(), c, bucket, key, o.ETag)
			if !errors.As(err, &se) && err != nil {
				h.opts.Log.Error("objects: DeleteObjects", "bucket", bucket, "key", key, "err", err)
				se = s3err(http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
			}
		}
		if se != nil {
			res.Errors = append(res.Errors, deleteErrorXML{Key: key, Code: se.code, Message: se.message})
		} else if !req.Quiet {
			res.Deleted = append(res.Deleted, deletedXML{Key: key})
		}
	}
	return writeXML(w, res)
}

// deleteOne deletes bucket/key for c (s3:DeleteObject). A conditional
// delete (ifMatch: If-Match, or DeleteObjects' ETag) reads the object as
// much as it deletes it, since its answer tells whether the key exists and
// whether its ETag is the one named: it needs s3:GetObject too, as on S3,
// and a missing key is NoSuchKey only to a caller who may list the bucket
// (AccessDenied otherwise, as GetObject answers).
func (h *Handler) deleteOne(ctx context.Context, c *caller, bucket, key, ifMatch string) error {
	if err := h.authorize(ctx, c, "s3:DeleteObject", bucket, key, nil); err != nil {
		return err
	}
	if ifMatch != "" {
		if err := h.authorize(ctx, c, "s3:GetObject", bucket, key, nil); err != nil {
			return err
		}
	}
	err := h.disk.delete(bucket, key, ifMatch)
	var se *s3Error
	switch {
	case errors.Is(err, errNoBucket):
		return errNoSuchBucket()
	case errors.As(err, &se) && se.code == "NoSuchKey" &&
		h.authorize(ctx, c, "s3:ListBucket", bucket, "", map[string]string{"s3:prefix": key}) != nil:
		return errAccessDenied
	}
	return err
}
