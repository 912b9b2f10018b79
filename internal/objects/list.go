package objects

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"hash/crc32"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// listContents is one Contents entry of a listing.
type listContents struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
	// Owner is the account, as ListBuckets and ListMultipartUploads name
	// it: objects are the account's, whoever put them.
	Owner *ownerXML `xml:"Owner,omitempty"`
}

// encoding returns how a listing's keys and prefixes are sent:
// encoding-type=url URL-encodes them (XML cannot carry every byte a key
// may hold), as clients that ask decode them; else they are sent as they
// are. Another encoding type is InvalidArgument.
func encoding(q url.Values) (*encoder, error) {
	switch q.Get("encoding-type") {
	case "":
		return &encoder{}, nil
	case "url":
		return &encoder{url: true}, nil
	}
	return nil, s3err(http.StatusBadRequest, "InvalidArgument", "Invalid Encoding Method specified in Request")
}

// encoder encodes a listing's keys and prefixes as encoding-type asks, and
// notes one that XML 1.0 cannot carry as it is (a control character):
// written as is, the XML encoder would put U+FFFD in its place, a key that
// does not exist, and V1's NextMarker after it would skip the rest.
type encoder struct {
	url  bool
	bare bool // a string XML cannot carry was encoded without url
}

func (e *encoder) enc(s string) string {
	if e.url {
		return url.QueryEscape(s)
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return !xmlChar(r) }) {
		e.bare = true
	}
	return s
}

// check refuses a listing holding a string XML cannot carry; listed with
// encoding-type=url it comes through. (S3 writes a character reference no
// XML 1.0 parser takes, so that its SDKs fail too, less plainly.)
func (e *encoder) check() error {
	if e.bare {
		return s3err(http.StatusBadRequest, "InvalidArgument",
			"The listing holds a key or prefix with characters XML cannot carry; list it with encoding-type=url")
	}
	return nil
}

// xmlChar reports whether XML 1.0 can carry r (its Char production).
func xmlChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// listObjects serves ListObjectsV2 (list-type=2) and ListObjects (V1). A
// page holds at most max-keys entries, keys and common prefixes counted
// alike, and every common prefix appears on exactly one page: a page ends
// at an entry (a key or a whole common prefix), and the next page resumes
// after it. V2 resumes after its continuation token (the last entry of the
// previous page) or else after start-after (a key); V1 after marker (a key
// or a common prefix, as NextMarker gives).
func (h *Handler) listObjects(w http.ResponseWriter, r *http.Request, c *caller, bucket string, q url.Values) error {
	v2 := q.Get("list-type") == "2"
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	maxKeys := 1000
	if s := q.Get("max-keys"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return s3err(http.StatusBadRequest, "InvalidArgument", "max-keys must be a non-negative integer")
		}
		maxKeys = min(n, 1000)
	}
	e, err := encoding(q)
	if err != nil {
		return err
	}
	// V1 names each object's owner, V2 only when fetch-owner=true asks.
	var owner *ownerXML
	if !v2 || q.Get("fetch-owner") == "true" {
		o := h.owner()
		owner = &o
	}
	extra := map[string]string{"s3:prefix": prefix, "s3:max-keys": strconv.Itoa(maxKeys)}
	if delim != "" {
		extra["s3:delimiter"] = delim
	}
	if err := h.authorize(r.Context(), c, "s3:ListBucket", bucket, "", extra); err != nil {
		return err
	}
	all, err := h.disk.list(bucket)
	if errors.Is(err, errNoBucket) {
		return errNoSuchBucket()
	}
	if err != nil {
		return err
	}
	// afterKey skips keys up to it; afterEntry skips entries (a key, or the
	// common prefix it rolls up into) up to it.
	var afterKey, afterEntry string
	switch tok := q.Get("continuation-token"); {
	case !v2:
		afterEntry = q.Get("marker")
	case q.Has("continuation-token"): // empty too: not a token writ gave
		entry, ok := openToken(tok)
		if !ok {
			return s3err(http.StatusBadRequest, "InvalidArgument", "The continuation token provided is incorrect")
		}
		afterEntry = entry
	default:
		afterKey = q.Get("start-after")
	}
	var contents []listContents
	var prefixes []prefixXML
	truncated, last := false, ""
	for _, m := range all {
		if !strings.HasPrefix(m.Key, prefix) || m.Key <= afterKey {
			continue
		}
		cp := commonPrefix(m.Key, prefix, delim)
		entry := m.Key
		if cp != "" {
			entry = cp
		}
		// Keys are sorted and a common prefix sorts before (or as) every
		// key it holds, so entries come in order: an entry up to the one
		// resumed after, or the same as the last listed, is done.
		if entry <= afterEntry || (cp != "" && cp == last) {
			continue
		}
		if len(contents)+len(prefixes) >= maxKeys {
			// max-keys 0 asks for no entry, not for pages: nothing follows.
			truncated = maxKeys > 0
			break
		}
		if cp != "" {
			prefixes = append(prefixes, prefixXML{e.enc(cp)})
		} else {
			contents = append(contents, listContents{Key: e.enc(m.Key), LastModified: m.LastModified.UTC().Format(time.RFC3339), ETag: m.ETag, Size: m.Size, StorageClass: "STANDARD", Owner: owner})
		}
		last = entry
	}
	if v2 {
		v := struct {
			XMLName               xml.Name       `xml:"ListBucketResult"`
			NS                    string         `xml:"xmlns,attr"`
			Name                  string         `xml:"Name"`
			Prefix                string         `xml:"Prefix"`
			Delimiter             string         `xml:"Delimiter,omitempty"`
			MaxKeys               int            `xml:"MaxKeys"`
			KeyCount              int            `xml:"KeyCount"`
			IsTruncated           bool           `xml:"IsTruncated"`
			ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
			NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
			StartAfter            string         `xml:"StartAfter,omitempty"`
			EncodingType          string         `xml:"EncodingType,omitempty"`
			Contents              []listContents `xml:"Contents"`
			CommonPrefixes        []prefixXML    `xml:"CommonPrefixes"`
		}{NS: s3NS, Name: bucket, Prefix: e.enc(prefix), Delimiter: e.enc(delim), MaxKeys: maxKeys, KeyCount: len(contents) + len(prefixes),
			IsTruncated: truncated, ContinuationToken: q.Get("continuation-token"), StartAfter: e.enc(q.Get("start-after")),
			EncodingType: q.Get("encoding-type"), Contents: contents, CommonPrefixes: prefixes}
		if truncated {
			v.NextContinuationToken = continuationToken(last)
		}
		if err := e.check(); err != nil {
			return err
		}
		return writeXML(w, v)
	}
	v := struct {
		XMLName        xml.Name       `xml:"ListBucketResult"`
		NS             string         `xml:"xmlns,attr"`
		Name           string         `xml:"Name"`
		Prefix         string         `xml:"Prefix"`
		Marker         string         `xml:"Marker"`
		NextMarker     string         `xml:"NextMarker,omitempty"`
		Delimiter      string         `xml:"Delimiter,omitempty"`
		MaxKeys        int            `xml:"MaxKeys"`
		IsTruncated    bool           `xml:"IsTruncated"`
		EncodingType   string         `xml:"EncodingType,omitempty"`
		Contents       []listContents `xml:"Contents"`
		CommonPrefixes []prefixXML    `xml:"CommonPrefixes"`
	}{NS: s3NS, Name: bucket, Prefix: e.enc(prefix), Marker: e.enc(q.Get("marker")), Delimiter: e.enc(delim), MaxKeys: maxKeys,
		IsTruncated: truncated, EncodingType: q.Get("encoding-type"), Contents: contents, CommonPrefixes: prefixes}
	if truncated {
		v.NextMarker = e.enc(last)
	}
	if err := e.check(); err != nil {
		return err
	}
	return writeXML(w, v)
}

// prefixXML is one CommonPrefixes entry of a listing.
type prefixXML struct {
	Prefix string `xml:"Prefix"`
}

// commonPrefix returns the common prefix a listing rolls key up into (key
// up to and including the first delim after prefix), or "" when none.
func commonPrefix(key, prefix, delim string) string {
	if delim == "" {
		return ""
	}
	if i := strings.Index(key[len(prefix):], delim); i >= 0 {
		return key[:len(prefix)+i+len(delim)]
	}
	return ""
}

// continuationToken is the ListObjectsV2 token resuming after entry: the
// entry and its CRC-32, so that a token that is not one of ours (a typo,
// another service's) is refused rather than read as some entry.
func continuationToken(entry string) string {
	b := binary.BigEndian.AppendUint32([]byte(entry), crc32.ChecksumIEEE([]byte(entry)))
	return base64.RawURLEncoding.EncodeToString(b)
}

// openToken returns the entry of a continuationToken, ok false when tok
// is not one.
func openToken(tok string) (entry string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 4 {
		return "", false
	}
	e := b[:len(b)-4]
	return string(e), binary.BigEndian.Uint32(b[len(b)-4:]) == crc32.ChecksumIEEE(e)
}
