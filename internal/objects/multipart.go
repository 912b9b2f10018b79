package objects

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

const (
	minPartSize = 5 << 20 // every part but the last
	maxPartSize = 5 << 30
	maxParts    = 10000
	// maxCompleteBody bounds a CompleteMultipartUpload document (10000
	// parts with every checksum fit in well under it).
	maxCompleteBody = 8 << 20
)

func errNoSuchUpload() *s3Error {
	return s3err(http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
}

// uploadParts is findUpload with the upload's stored parts.
func (h *Handler) uploadParts(bucket, key, id string) (upload, []part, error) {
	u, err := h.findUpload(bucket, key, id)
	if err != nil {
		return upload{}, nil, err
	}
	ps, err := h.disk.parts(bucket, id)
	if errors.Is(err, errNoUpload) {
		return upload{}, nil, errNoSuchUpload()
	}
	return u, ps, err
}

// findUpload returns the upload id of bucket/key; an id of another key is
// as unknown as one never issued.
func (h *Handler) findUpload(bucket, key, id string) (upload, error) {
	u, err := h.disk.getUpload(bucket, id)
	switch {
	case errors.Is(err, errNoBucket):
		return upload{}, errNoSuchBucket()
	case errors.Is(err, errNoUpload), err == nil && u.Key != key:
		return upload{}, errNoSuchUpload()
	}
	return u, err
}

// createUpload serves CreateMultipartUpload (POST /bucket/key?uploads).
func (h *Handler) createUpload(w http.ResponseWriter, r *http.Request, c *caller, bucket, key string) error {
	if err := h.authorize(r.Context(), c, "s3:PutObject", bucket, key, nil); err != nil {
		return err
	}
	if len(key) > 1024 {
		return s3err(http.StatusBadRequest, "KeyTooLongError", "Your key is too long")
	}
	alg, err := checksumAlg(r.Header.Get("X-Amz-Checksum-Algorithm"))
	if err != nil {
		return err
	}
	typ := strings.ToUpper(r.Header.Get("X-Amz-Checksum-Type"))
	fullOK := alg == "crc32" || alg == "crc32c" || alg == "crc64nvme"
	switch {
	case typ == "" && alg == "crc64nvme":
		typ = "FULL_OBJECT" // the only kind CRC64NVME has
	case typ == "" && alg != "":
		typ = "COMPOSITE"
	case typ == "":
	case alg == "":
		return s3err(http.StatusBadRequest, "InvalidRequest", "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.")
	case typ == "COMPOSITE" && alg != "crc64nvme", typ == "FULL_OBJECT" && fullOK:
	default:
		return s3err(http.StatusBadRequest, "InvalidRequest", "The "+typ+" checksum type cannot be used with the "+checksumNames[alg]+" checksum algorithm.")
	}
	rm, err := requestMeta(r) // the completed object's
	if err != nil {
		return err
	}
	u := upload{ID: newUploadID(), Key: key, Initiated: h.opts.Now().UTC(), Initiator: c.who,
		ContentType: rm.ContentType, UserMeta: rm.UserMeta, Headers: rm.Headers, ChecksumAlg: alg, ChecksumType: typ}
	if err := h.disk.createUpload(bucket, u); errors.Is(err, errNoBucket) {
		return errNoSuchBucket()
	} else if err != nil {
		return err
	}
	if alg != "" {
		w.Header().Set("x-amz-checksum-algorithm", checksumNames[alg])
		w.Header().Set("x-amz-checksum-type", typ)
	}
	return writeXML(w, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		NS       string   `xml:"xmlns,attr"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		UploadID string   `xml:"UploadId"`
	}{NS: s3NS, Bucket: bucket, Key: key, UploadID: u.ID})
}

// uploadPart serves UploadPart (PUT /bucket/key?partNumber=N&uploadId=X):
// the bytes are staged and fsynced, every digest the request announces is
// checked, and only then does the part replace any earlier one of number N.
func (h *Handler) uploadPart(w http.ResponseWriter, r *http.Request, c *caller, bucket, key string, q url.Values) error {
	if err := h.authorize(r.Context(), c, "s3:PutObject", bucket, key, nil); err != nil {
		return err
	}
	if _, copying := r.Header["X-Amz-Copy-Source"]; copying {
		return s3err(http.StatusNotImplemented, "NotImplemented", "UploadPartCopy is not available yet")
	}
	n, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || n < 1 || n > maxParts {
		return s3err(http.StatusBadRequest, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
	}
	id := q.Get("uploadId")
	u, err := h.findUpload(bucket, key, id)
	if err != nil {
		return err
	}
	// newDigests first: for an aws-chunked body it sets ContentLength to
	// the decoded length, which is what the limit bounds.
	d, err := newDigests(r, u.ChecksumAlg, true)
	if err != nil {
		return err
	}
	limit := min(h.maxSize, maxPartSize)
	if r.ContentLength > limit {
		return s3err(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
	}
	if d.alg != "" && u.ChecksumAlg != "" && d.alg != u.ChecksumAlg {
		return s3err(http.StatusBadRequest, "InvalidRequest", "Checksum Type mismatch occurred, expected checksum Type: "+u.ChecksumAlg+", actual checksum Type: "+d.alg)
	}
	tmp, err := h.disk.stagePart(bucket, id, d.wrap(io.LimitReader(r.Body, limit+1)))
	if errors.Is(err, errNoUpload) {
		return errNoSuchUpload()
	}
	if err != nil {
		return err
	}
	if d.n > limit {
		os.Remove(tmp)
		return s3err(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
	}
	if err := d.check(); err != nil {
		os.Remove(tmp)
		return err
	}
	p := part{Number: n, Size: d.n, ETag: d.etag(), Checksum: d.extraSum(), LastModified: h.opts.Now().UTC()}
	if err := h.disk.commitPart(bucket, id, tmp, p); err != nil {
		os.Remove(tmp)
		if errors.Is(err, errNoUpload) {
			return errNoSuchUpload()
		}
		return err
	}
	w.Header().Set("ETag", p.ETag)
	if p.Checksum != "" {
		w.Header().Set("x-amz-checksum-"+u.ChecksumAlg, p.Checksum)
	} else if d.alg != "" {
		w.Header().Set("x-amz-checksum-"+d.alg, d.sumWant)
	}
	return nil
}

type completeRequest struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber        int    `xml:"PartNumber"`
		ETag              string `xml:"ETag"`
		ChecksumCRC32     string `xml:"ChecksumCRC32"`
		ChecksumCRC32C    string `xml:"ChecksumCRC32C"`
		ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME"`
		ChecksumSHA1      string `xml:"ChecksumSHA1"`
		ChecksumSHA256    string `xml:"ChecksumSHA256"`
	} `xml:"Part"`
}

// checksumXML carries an object's checksum in a response, under its
// algorithm's element.
type checksumXML struct {
	CRC32     string `xml:"ChecksumCRC32,omitempty"`
	CRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	CRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	SHA1      string `xml:"ChecksumSHA1,omitempty"`
	SHA256    string `xml:"ChecksumSHA256,omitempty"`
}

func (c *checksumXML) field(alg string) *string {
	switch alg {
	case "crc32":
		return &c.CRC32
	case "crc32c":
		return &c.CRC32C
	case "crc64nvme":
		return &c.CRC64NVME
	case "sha1":
		return &c.SHA1
	case "sha256":
		return &c.SHA256
	}
	return new(string)
}

func errInvalidPart() *s3Error {
	return s3err(http.StatusBadRequest, "InvalidPart", "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
}

// completeUpload serves CompleteMultipartUpload (POST ?uploadId=X): the
// listed parts, checked against what was uploaded, are assembled into one
// fsynced temporary file that then replaces the object atomically, so no
// reader ever sees a partial object. The ETag is S3's: the hex MD5 of the
// concatenated binary part MD5s, then "-" and the number of parts.
func (h *Handler) completeUpload(w http.ResponseWriter, r *http.Request, c *caller, bucket, key string, q url.Values) error {
	if err := h.authorize(r.Context(), c, "s3:PutObject", bucket, key, nil); err != nil {
		return err
	}
	id := q.Get("uploadId")
	if _, err := h.findUpload(bucket, key, id); err != nil {
		return err
	}
	// If-None-Match: * and If-Match hold for the completion as for a
	// PutObject: checked before the parts are assembled, and again with
	// the object installed.
	cond, err := writeConditions(r, bucket, key)
	if err != nil {
		return err
	}
	if cond != nil {
		if err := cond(h.disk.head(bucket, key)); err != nil {
			return err
		}
	}
	body, err := readSmall(r, maxCompleteBody, errMalformedXML(), false)
	if err != nil {
		return err
	}
	var req completeRequest
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Parts) == 0 || len(req.Parts) > maxParts {
		return errMalformedXML()
	}
	defer h.disk.lockUpload(bucket, id)()
	u, stored, err := h.uploadParts(bucket, key, id) // again, under the lock
	if err != nil {
		return err
	}
	byNum := make(map[int]part, len(stored))
	for _, p := range stored {
		byNum[p.Number] = p
	}
	use := make([]part, 0, len(req.Parts))
	for i, rp := range req.Parts {
		if i > 0 && rp.PartNumber <= req.Parts[i-1].PartNumber {
			return s3err(http.StatusBadRequest, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
		}
		p, ok := byNum[rp.PartNumber]
		if !ok || !strings.EqualFold(strings.Trim(rp.ETag, `" `), strings.Trim(p.ETag, `"`)) {
			return errInvalidPart()
		}
		given := checksumXML{rp.ChecksumCRC32, rp.ChecksumCRC32C, rp.ChecksumCRC64NVME, rp.ChecksumSHA1, rp.ChecksumSHA256}
		if v := *given.field(u.ChecksumAlg); u.ChecksumAlg != "" && v != "" && v != p.Checksum {
			return errInvalidPart()
		}
		use = append(use, p)
	}
	for _, p := range use[:len(use)-1] {
		if p.Size < minPartSize {
			return s3err(http.StatusBadRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
		}
	}
	etags := md5.New()
	var composite, full hash.Hash
	if u.ChecksumAlg != "" {
		if u.ChecksumType == "FULL_OBJECT" {
			full = newChecksum(u.ChecksumAlg)
		} else {
			composite = newChecksum(u.ChecksumAlg)
		}
	}
	for _, p := range use {
		b, _ := hex.DecodeString(strings.Trim(p.ETag, `"`))
		etags.Write(b)
		if composite != nil {
			cs, _ := base64.StdEncoding.DecodeString(p.Checksum)
			composite.Write(cs)
		}
	}
	suffix := "-" + strconv.Itoa(len(use))
	var w2 io.Writer
	if full != nil {
		w2 = full
	}
	tmp, size, err := h.disk.assemble(bucket, id, use, w2)
	if err != nil {
		return err
	}
	var sums checksumXML
	switch {
	case full != nil:
		*sums.field(u.ChecksumAlg) = base64.StdEncoding.EncodeToString(full.Sum(nil))
	case composite != nil:
		*sums.field(u.ChecksumAlg) = base64.StdEncoding.EncodeToString(composite.Sum(nil)) + suffix
	}
	// An object checksum sent with the request must be the one computed.
	for _, a := range checksumAlgs {
		if v := r.Header.Get("X-Amz-Checksum-" + a); v != "" && (a != u.ChecksumAlg || v != *sums.field(a)) {
			os.Remove(tmp)
			return s3err(http.StatusBadRequest, "BadDigest", "The "+checksumNames[a]+" you specified for the object did not match the calculated checksum.")
		}
	}
	m := meta{Size: size, ETag: `"` + hex.EncodeToString(etags.Sum(nil)) + suffix + `"`, ContentType: u.ContentType,
		UserMeta: u.UserMeta, Headers: u.Headers, LastModified: h.opts.Now().UTC()}
	for _, p := range use {
		m.Parts = append(m.Parts, p.Size)
	}
	if u.ChecksumAlg != "" {
		m.Checksum = &objChecksum{Alg: u.ChecksumAlg, Value: *sums.field(u.ChecksumAlg), Type: u.ChecksumType}
	}
	if _, err := h.disk.install(bucket, key, tmp, m, cond); err != nil {
		os.Remove(tmp)
		if errors.Is(err, errNoBucket) {
			return errNoSuchBucket()
		}
		return err
	}
	if err := h.disk.removeUpload(bucket, id); err != nil {
		h.opts.Log.Warn("objects: completed upload not cleaned up", "bucket", bucket, "upload", id, "err", err)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if u.ChecksumAlg != "" {
		w.Header().Set("x-amz-checksum-type", u.ChecksumType)
	}
	return writeXML(w, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		NS       string   `xml:"xmlns,attr"`
		Location string   `xml:"Location"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		ETag     string   `xml:"ETag"`
		checksumXML
		ChecksumType string `xml:"ChecksumType,omitempty"`
	}{NS: s3NS, Location: scheme + "://" + r.Host + r.URL.EscapedPath(), Bucket: bucket, Key: key, ETag: m.ETag,
		checksumXML: sums, ChecksumType: u.ChecksumType})
}

// abortUpload serves AbortMultipartUpload (DELETE ?uploadId=X): the upload
// and every part it staged are removed.
func (h *Handler) abortUpload(w http.ResponseWriter, r *http.Request, c *caller, bucket, key string, q url.Values) error {
	if err := h.authorize(r.Context(), c, "s3:AbortMultipartUpload", bucket, key, nil); err != nil {
		return err
	}
	id := q.Get("uploadId")
	defer h.disk.lockUpload(bucket, id)()
	if _, err := h.findUpload(bucket, key, id); err != nil {
		return err
	}
	if err := h.disk.removeUpload(bucket, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type ownerXML struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

// owner is the Owner of the store's buckets, objects and uploads: the
// account, whoever created them.
func (h *Handler) owner() ownerXML { return ownerXML{h.cfg.Account, h.cfg.Account} }

// listParts serves ListParts (GET ?uploadId=X), with max-parts and
// part-number-marker paging.
func (h *Handler) listParts(w http.ResponseWriter, r *http.Request, c *caller, bucket, key string, q url.Values) error {
	if err := h.authorize(r.Context(), c, "s3:ListMultipartUploadParts", bucket, key, nil); err != nil {
		return err
	}
	maxN, err := intParam(q, "max-parts", 1000)
	if err != nil {
		return err
	}
	marker, err := intParam(q, "part-number-marker", 0)
	if err != nil {
		return err
	}
	id := q.Get("uploadId")
	u, ps, err := h.uploadParts(bucket, key, id)
	if err != nil {
		return err
	}
	type partXML struct {
		PartNumber   int    `xml:"PartNumber"`
		LastModified string `xml:"LastModified"`
		ETag         string `xml:"ETag"`
		Size         int64  `xml:"Size"`
		checksumXML
	}
	v := struct {
		XMLName              xml.Name  `xml:"ListPartsResult"`
		NS                   string    `xml:"xmlns,attr"`
		Bucket               string    `xml:"Bucket"`
		Key                  string    `xml:"Key"`
		UploadID             string    `xml:"UploadId"`
		Initiator            ownerXML  `xml:"Initiator"`
		Owner                ownerXML  `xml:"Owner"`
		StorageClass         string    `xml:"StorageClass"`
		PartNumberMarker     int       `xml:"PartNumberMarker"`
		NextPartNumberMarker int       `xml:"NextPartNumberMarker"`
		MaxParts             int       `xml:"MaxParts"`
		IsTruncated          bool      `xml:"IsTruncated"`
		Parts                []partXML `xml:"Part"`
		ChecksumAlgorithm    string    `xml:"ChecksumAlgorithm,omitempty"`
		ChecksumType         string    `xml:"ChecksumType,omitempty"`
	}{NS: s3NS, Bucket: bucket, Key: key, UploadID: id, Initiator: ownerXML{u.Initiator, u.Initiator},
		Owner: h.owner(), StorageClass: "STANDARD", PartNumberMarker: marker,
		MaxParts: min(maxN, 1000), ChecksumAlgorithm: checksumNames[u.ChecksumAlg], ChecksumType: u.ChecksumType}
	for _, p := range ps {
		if p.Number <= marker {
			continue
		}
		if len(v.Parts) >= v.MaxParts {
			v.IsTruncated = true
			break
		}
		px := partXML{PartNumber: p.Number, LastModified: p.LastModified.UTC().Format(s3Time), ETag: p.ETag, Size: p.Size}
		*px.field(u.ChecksumAlg) = p.Checksum
		v.Parts = append(v.Parts, px)
		v.NextPartNumberMarker = p.Number
	}
	return writeXML(w, v)
}

func intParam(q url.Values, name string, def int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, s3err(http.StatusBadRequest, "InvalidArgument", "Provided "+name+" not an integer or within integer range")
	}
	return n, nil
}

// listUploads serves ListMultipartUploads (GET /bucket?uploads): prefix,
// delimiter, key-marker / upload-id-marker, max-uploads and encoding-type
// (keys, prefixes and key markers encoded as listObjects encodes them).
func (h *Handler) listUploads(w http.ResponseWriter, r *http.Request, c *caller, bucket string, q url.Values) error {
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	e, err := encoding(q)
	if err != nil {
		return err
	}
	extra := map[string]string{"s3:prefix": prefix}
	if delim != "" {
		extra["s3:delimiter"] = delim
	}
	if err := h.authorize(r.Context(), c, "s3:ListBucketMultipartUploads", bucket, "", extra); err != nil {
		return err
	}
	maxN, err := intParam(q, "max-uploads", 1000)
	if err != nil {
		return err
	}
	all, err := h.disk.uploads(bucket)
	if errors.Is(err, errNoBucket) {
		return errNoSuchBucket()
	}
	if err != nil {
		return err
	}
	keyMarker, idMarker := q.Get("key-marker"), q.Get("upload-id-marker")
	type uploadXML struct {
		Key          string   `xml:"Key"`
		UploadID     string   `xml:"UploadId"`
		Initiator    ownerXML `xml:"Initiator"`
		Owner        ownerXML `xml:"Owner"`
		StorageClass string   `xml:"StorageClass"`
		Initiated    string   `xml:"Initiated"`
		ChecksumAlg  string   `xml:"ChecksumAlgorithm,omitempty"`
		ChecksumType string   `xml:"ChecksumType,omitempty"`
	}
	v := struct {
		XMLName            xml.Name    `xml:"ListMultipartUploadsResult"`
		NS                 string      `xml:"xmlns,attr"`
		Bucket             string      `xml:"Bucket"`
		KeyMarker          string      `xml:"KeyMarker"`
		UploadIDMarker     string      `xml:"UploadIdMarker"`
		NextKeyMarker      string      `xml:"NextKeyMarker,omitempty"`
		NextUploadIDMarker string      `xml:"NextUploadIdMarker,omitempty"`
		Prefix             string      `xml:"Prefix"`
		Delimiter          string      `xml:"Delimiter,omitempty"`
		MaxUploads         int         `xml:"MaxUploads"`
		IsTruncated        bool        `xml:"IsTruncated"`
		EncodingType       string      `xml:"EncodingType,omitempty"`
		Uploads            []uploadXML `xml:"Upload"`
		CommonPrefixes     []prefixXML `xml:"CommonPrefixes"`
	}{NS: s3NS, Bucket: bucket, KeyMarker: e.enc(keyMarker), UploadIDMarker: idMarker, Prefix: e.enc(prefix), Delimiter: e.enc(delim),
		MaxUploads: min(maxN, 1000), EncodingType: q.Get("encoding-type")}
	seen := map[string]bool{}
	n := 0
	for i, u := range all {
		if !strings.HasPrefix(u.Key, prefix) {
			continue
		}
		// After the markers: keys past key-marker, or, with an upload-id-marker,
		// the uploads of key-marker after that one.
		if keyMarker != "" && (u.Key < keyMarker || u.Key == keyMarker && (idMarker == "" || !afterUpload(all, i, idMarker))) {
			continue
		}
		cp := commonPrefix(u.Key, prefix, delim)
		if cp != "" && seen[cp] {
			continue
		}
		if n >= v.MaxUploads {
			v.IsTruncated = true
			break
		}
		n++
		v.NextKeyMarker, v.NextUploadIDMarker = u.Key, u.ID
		if cp != "" {
			seen[cp] = true
			v.CommonPrefixes = append(v.CommonPrefixes, prefixXML{e.enc(cp)})
			continue
		}
		v.Uploads = append(v.Uploads, uploadXML{Key: e.enc(u.Key), UploadID: u.ID, Initiator: ownerXML{u.Initiator, u.Initiator},
			Owner: h.owner(), StorageClass: "STANDARD", Initiated: u.Initiated.UTC().Format(s3Time),
			ChecksumAlg: checksumNames[u.ChecksumAlg], ChecksumType: u.ChecksumType})
	}
	if !v.IsTruncated {
		v.NextKeyMarker, v.NextUploadIDMarker = "", ""
	}
	v.NextKeyMarker = e.enc(v.NextKeyMarker)
	if err := e.check(); err != nil {
		return err
	}
	return writeXML(w, v)
}

// afterUpload reports whether all[i] comes after the upload idMarker of
// the same key in the listing order.
func afterUpload(all []upload, i int, idMarker string) bool {
	for j := i - 1; j >= 0 && all[j].Key == all[i].Key; j-- {
		if all[j].ID == idMarker {
			return true
		}
	}
	return false
}
