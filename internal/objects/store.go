// Package objects is writ's S3-compatible object store: buckets and objects
// on local disk, the S3 REST subset the AWS SDKs use, every request
// authenticated with SigV4 and authorized with the IAM engine against the
// caller's role (or user) policies and the identity's own variables.
package objects

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// meta is an object's metadata, stored beside its data.
type meta struct {
	Key          string            `json:"key"`
	Size         int64             `json:"size"`
	ETag         string            `json:"etag"`
	ContentType  string            `json:"content_type,omitempty"`
	LastModified time.Time         `json:"last_modified"`
	UserMeta     map[string]string `json:"user_meta,omitempty"`
	// Headers are the storedHeaders given with the object, by canonical
	// name; an object stored before they were kept has none.
	Headers map[string]string `json:"headers,omitempty"`
	// Parts are the sizes of a multipart object's parts, in order (GetObject
	// ?partNumber); none for an object put whole.
	Parts []int64 `json:"parts,omitempty"`
	// Data is the file holding the bytes (a fresh name per write, so the
	// metadata always names complete data).
	Data string `json:"data"`
	// Checksum is the object's checksum as its write gave it (and checked
	// it), served on GetObject and HeadObject with x-amz-checksum-mode:
	// ENABLED; nil when the write sent none (or predates keeping it).
	Checksum *objChecksum `json:"checksum,omitempty"`
}

// objChecksum is an object's x-amz-checksum-<Alg> value and its
// x-amz-checksum-type (FULL_OBJECT, or COMPOSITE for a multipart
// object's checksum of its parts' checksums, "-N" on the value).
type objChecksum struct {
	Alg   string `json:"alg"` // lower-case, as in the header name
	Value string `json:"value"`
	Type  string `json:"type"`
}

// disk keeps objects under root/<bucket>/<sha256(key)>.{data,json}: the
// file names never contain the key, so no key can escape its bucket.
type disk struct {
	root string
	mu   sync.RWMutex // serializes writes of one process against listing
}

var errNoBucket = errors.New("objects: no such bucket")
var errNoKey = errors.New("objects: no such key")

func (d *disk) bucketDir(b string) string { return filepath.Join(d.root, b) }

func objName(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

func (d *disk) createBucket(b string, now time.Time) error {
	if err := os.MkdirAll(d.bucketDir(b), 0o700); err != nil {
		return err
	}
	// The creation time, once (a configured bucket's at the first start
	// that keeps it): ListBuckets' CreationDate.
	p := filepath.Join(d.bucketDir(b), createdFile)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return writeFileAtomic(p, []byte(now.UTC().Format(time.RFC3339Nano)))
	}
	return nil
}

// createdFile holds a bucket's creation time, beside its objects.
const createdFile = "bucket-created"

// bucketCreated is when bucket b was created: its createdFile, or for a
// bucket without one the directory's modification time.
func (d *disk) bucketCreated(b string) time.Time {
	if raw, err := os.ReadFile(filepath.Join(d.bucketDir(b), createdFile)); err == nil {
		if t, err := time.Parse(time.RFC3339Nano, string(raw)); err == nil {
			return t
		}
	}
	if fi, err := os.Stat(d.bucketDir(b)); err == nil {
		return fi.ModTime().UTC()
	}
	return time.Unix(0, 0).UTC()
}

func (d *disk) bucketExists(b string) bool {
	fi, err := os.Stat(d.bucketDir(b))
	return err == nil && fi.IsDir()
}

func (d *disk) buckets() ([]string, error) {
	entries, err := os.ReadDir(d.root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// put writes the object durably: data to a new file (fsync), then the
// metadata naming it (temporary file, fsync, rename), then the old data is
// removed. A crash leaves the old object or the new one, never a mix (and
// at most a temporary file, which sweep removes). verify, when given, is
// called with the size once every byte is read and synced, before anything
// is visible: an error from it leaves nothing behind. cond, when given, is
// called under the write lock with the current object (or errNoKey) just
// before the new one replaces it: an error from it leaves the current
// object as it is, so a conditional write's check and its write are atomic
// against every other write of the process.
func (d *disk) put(bucket, key string, r io.Reader, m meta, verify func(size int64, m *meta) error, cond func(cur meta, err error) error) (meta, error) {
	dir := d.bucketDir(bucket)
	if !d.bucketExists(bucket) {
		return meta{}, errNoBucket
	}
	name := objName(key)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return meta{}, err
	}
	defer os.Remove(tmp.Name())
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && verify != nil {
		err = verify(n, &m)
	}
	if err != nil {
		return meta{}, err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	m.Key, m.Size, m.ETag = key, n, `"`+hex.EncodeToString(h.Sum(nil))+`"`
	m.Data = name + "-" + hex.EncodeToString(rnd[:]) + ".data"
	mb, _ := json.Marshal(m)
	d.mu.Lock()
	defer d.mu.Unlock()
	old, err := d.headLocked(bucket, key)
	if cond != nil {
		if err := cond(old, err); err != nil {
			return meta{}, err
		}
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, m.Data)); err != nil {
		return meta{}, err
	}
	if err := writeFileAtomic(filepath.Join(dir, name+".json"), mb); err != nil {
		os.Remove(filepath.Join(dir, m.Data))
		return meta{}, err
	}
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
	if old.Data != "" && old.Data != m.Data {
		os.Remove(filepath.Join(dir, old.Data))
	}
	return m, nil
}

func writeFileAtomic(path string, b []byte) error {
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := path + ".tmp-" + hex.EncodeToString(rnd[:])
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func (d *disk) head(bucket, key string) (meta, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.headLocked(bucket, key)
}

func (d *disk) headLocked(bucket, key string) (meta, error) {
	if !d.bucketExists(bucket) {
		return meta{}, errNoBucket
	}
	b, err := os.ReadFile(filepath.Join(d.bucketDir(bucket), objName(key)+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return meta{}, errNoKey
	}
	if err != nil {
		return meta{}, err
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil || m.Key != key {
		return meta{}, fmt.Errorf("objects: corrupt metadata for %q", key)
	}
	return m, nil
}

func (d *disk) open(bucket, key string) (*os.File, meta, error) {
	m, err := d.head(bucket, key)
	if err != nil {
		return nil, meta{}, err
	}
	f, err := os.Open(filepath.Join(d.bucketDir(bucket), filepath.Base(m.Data)))
	if err != nil {
		return nil, meta{}, errNoKey
	}
	return f, m, nil
}

// delete removes an object; deleting a missing key succeeds, as in S3.
// With ifMatch (If-Match: ETags, or *) it deletes only an object whose
// ETag it names (412 PreconditionFailed otherwise, 404 NoSuchKey when
// there is none), checked under the write lock against concurrent writes.
func (d *disk) delete(bucket, key, ifMatch string) error {
	if !d.bucketExists(bucket) {
		return errNoBucket
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	m, err := d.headLocked(bucket, key)
	switch {
	case ifMatch != "" && errors.Is(err, errNoKey):
		return errNoSuchKey(bucket, key) // a conditional delete needs an object
	case ifMatch != "" && err != nil:
		return err
	case ifMatch != "" && !etagMatches(ifMatch, m.ETag):
		return errPrecondition
	case err != nil:
		return nil // deleting a missing key succeeds, as in S3
	}
	os.Remove(filepath.Join(d.bucketDir(bucket), objName(key)+".json")) // metadata first: gone at once
	os.Remove(filepath.Join(d.bucketDir(bucket), filepath.Base(m.Data)))
	return nil
}

// list returns the bucket's objects sorted by key.
func (d *disk) list(bucket string) ([]meta, error) {
	if !d.bucketExists(bucket) {
		return nil, errNoBucket
	}
	d.mu.RLock()
	entries, err := os.ReadDir(d.bucketDir(bucket))
	d.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	var out []meta
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.bucketDir(bucket), e.Name()))
		if err != nil {
			continue
		}
		var m meta
		if json.Unmarshal(b, &m) == nil {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// sweep removes what writes cut short (a crash, SIGKILL) left in a bucket,
// none of it ever visible: temporary files (bytes being received, metadata
// being replaced), data files no metadata names (a put cut before its
// metadata, the old data of an overwrite), and under .uploads the uploads
// without upload.json and part files no part names. It runs before the
// store serves (a data_dir belongs to one writ process).
func (d *disk) sweep(bucket string) error {
	dir := d.bucketDir(bucket)
	err := sweepDir(dir, func(n string) (string, bool, error) {
		if !strings.HasSuffix(n, ".json") {
			return "", false, nil
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", true, err
		}
		var m meta
		err = json.Unmarshal(b, &m)
		return m.Data, true, err
	})
	if err != nil {
		return err
	}
	ups, err := os.ReadDir(d.uploadsDir(bucket))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	for _, u := range ups {
		if u.IsDir() && validUploadID(u.Name()) {
			if err := d.sweepUpload(d.uploadDir(bucket, u.Name())); err != nil {
				return err
			}
		}
	}
	syncDir(dir)
	return err
}

// sweepUpload is sweep for one multipart upload's directory.
func (d *disk) sweepUpload(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "upload.json")); errors.Is(err, fs.ErrNotExist) {
		return os.RemoveAll(dir) // cut while being created or removed
	}
	return sweepDir(dir, func(n string) (string, bool, error) {
		if !strings.HasPrefix(n, "part-") || !strings.HasSuffix(n, ".json") {
			return "", false, nil
		}
		p, err := readPart(filepath.Join(dir, n))
		return p.Data, true, err
	})
}

// sweepDir removes from dir the temporary files and the data files no
// metadata file names. dataOf reports whether a file is metadata and the
// data file it names; metadata it cannot read leaves the data files alone.
func sweepDir(dir string, dataOf func(name string) (data string, isMeta bool, err error)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	var data []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			continue
		}
		if isTemp(n) {
			os.Remove(filepath.Join(dir, n))
			continue
		}
		if strings.HasSuffix(n, ".data") {
			data = append(data, n)
			continue
		}
		named, isMeta, err := dataOf(n)
		if isMeta && err != nil {
			return nil // unreadable: remove nothing it might name
		}
		if isMeta {
			keep[named] = true
		}
	}
	for _, n := range data {
		if !keep[n] {
			os.Remove(filepath.Join(dir, n))
		}
	}
	return nil
}

// isTemp reports a temporary file of put, stagePart, assemble (".tmp-*")
// or writeFileAtomic ("<name>.tmp-<hex>").
func isTemp(name string) bool {
	return strings.Contains(name, ".tmp-")
}
