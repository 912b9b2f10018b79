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
	// Data is the file holding the bytes (a fresh name per write, so the
	// metadata always names complete data).
	Data string `json:"data"`
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

func (d *disk) createBucket(b string) error {
	return os.MkdirAll(d.bucketDir(b), 0o700)
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
// removed. A crash leaves the old object or the new one, never a mix.
func (d *disk) put(bucket, key string, r io.Reader, m meta) (meta, error) {
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
	old, _ := d.headLocked(bucket, key)
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

func (d *disk) delete(bucket, key string) error {
	if !d.bucketExists(bucket) {
		return errNoBucket
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	m, err := d.headLocked(bucket, key)
	if err != nil {
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
		if json.Unmarshal(b, &m) == nil && !strings.HasPrefix(m.Key, ".staging/") {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// promote makes the staged object visible under key (metadata swap only).
func (d *disk) promote(bucket, stage, key string) (meta, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sm, err := d.headLocked(bucket, stage)
	if err != nil {
		return meta{}, err
	}
	dir := d.bucketDir(bucket)
	old, _ := d.headLocked(bucket, key)
	m := sm
	m.Key = key
	mb, _ := json.Marshal(m)
	if err := writeFileAtomic(filepath.Join(dir, objName(key)+".json"), mb); err != nil {
		return meta{}, err
	}
	// The staging metadata goes; its data now belongs to key.
	os.Remove(filepath.Join(dir, objName(stage)+".json"))
	if old.Data != "" && old.Data != m.Data {
		os.Remove(filepath.Join(dir, old.Data))
	}
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
	return m, nil
}
