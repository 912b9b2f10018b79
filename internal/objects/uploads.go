package objects

import (
	"crypto/rand"
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

// Multipart uploads are staged under <bucket>/.uploads/<upload id>/:
//
//	upload.json              the upload (key, metadata, checksum algorithm)
//	part-00001.json          a part's size, ETag and checksum, naming …
//	part-00001-<rnd>.data    … its bytes (a fresh name per write)
//
// A part becomes visible when its metadata is renamed into place, after its
// data was fsynced, so a listed part is always complete. Completing an
// upload copies the listed parts into one temporary file in the bucket
// (fsync), renames it to the object's data and swaps the object's metadata,
// exactly as a PutObject does; the staging directory is removed after.
// Object listings read only the bucket's *.json files, so the staging area
// is never seen as objects.

// upload is an in-progress multipart upload.
type upload struct {
	ID          string            `json:"id"`
	Key         string            `json:"key"`
	Initiated   time.Time         `json:"initiated"`
	Initiator   string            `json:"initiator,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	UserMeta    map[string]string `json:"user_meta,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"` // the completed object's storedHeaders
	// ChecksumAlg is the lower-case x-amz-checksum-algorithm ("" if none);
	// ChecksumType is COMPOSITE or FULL_OBJECT.
	ChecksumAlg  string `json:"checksum_alg,omitempty"`
	ChecksumType string `json:"checksum_type,omitempty"`
}

// part is one uploaded part.
type part struct {
	Number       int       `json:"number"`
	Size         int64     `json:"size"`
	ETag         string    `json:"etag"`
	Checksum     string    `json:"checksum,omitempty"` // base64, of the upload's algorithm
	LastModified time.Time `json:"last_modified"`
	Data         string    `json:"data"`
}

var errNoUpload = errors.New("objects: no such upload")

// uploadLocks serializes the metadata changes of one upload (part commits,
// complete, abort); part bytes are written without it.
var uploadLocks = keyedMutex{m: map[string]*keyedEntry{}}

type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	sync.Mutex
	n int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.n++
	k.mu.Unlock()
	e.Lock()
	return func() {
		e.Unlock()
		k.mu.Lock()
		if e.n--; e.n == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

func newUploadID() string {
	var b [24]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validUploadID accepts only ids newUploadID makes: an id is a directory
// name, so nothing else may reach the file system.
func validUploadID(id string) bool {
	if len(id) != 48 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (d *disk) uploadsDir(bucket string) string {
	return filepath.Join(d.bucketDir(bucket), ".uploads")
}

func (d *disk) uploadDir(bucket, id string) string { return filepath.Join(d.uploadsDir(bucket), id) }

func (d *disk) lockUpload(bucket, id string) func() { return uploadLocks.lock(d.uploadDir(bucket, id)) }

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

// createUpload stores a new upload.
func (d *disk) createUpload(bucket string, u upload) error {
	if !d.hasBucket(bucket) {
		return errNoBucket
	}
	dir := d.uploadDir(bucket, u.ID)
	// Mkdir, not MkdirAll: a bucket deleted meanwhile must stay deleted.
	if err := os.Mkdir(d.uploadsDir(bucket), 0o700); errors.Is(err, fs.ErrNotExist) {
		return errNoBucket
	} else if err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	b, _ := json.Marshal(u)
	if err := writeFileAtomic(filepath.Join(dir, "upload.json"), b); err != nil {
		os.RemoveAll(dir)
		return err
	}
	syncDir(d.uploadsDir(bucket))
	return nil
}

// getUpload reads an upload of bucket; errNoUpload when it is not there.
func (d *disk) getUpload(bucket, id string) (upload, error) {
	if !d.hasBucket(bucket) {
		return upload{}, errNoBucket
	}
	if !validUploadID(id) {
		return upload{}, errNoUpload
	}
	b, err := os.ReadFile(filepath.Join(d.uploadDir(bucket, id), "upload.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return upload{}, errNoUpload
	}
	if err != nil {
		return upload{}, err
	}
	var u upload
	if err := json.Unmarshal(b, &u); err != nil || u.ID != id {
		return upload{}, fmt.Errorf("objects: corrupt upload %s", id)
	}
	return u, nil
}

// uploads lists the bucket's uploads by key, then initiation time.
func (d *disk) uploads(bucket string) ([]upload, error) {
	if !d.hasBucket(bucket) {
		return nil, errNoBucket
	}
	entries, err := os.ReadDir(d.uploadsDir(bucket))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []upload
	for _, e := range entries {
		if u, err := d.getUpload(bucket, e.Name()); err == nil {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		return out[i].Initiated.Before(out[j].Initiated)
	})
	return out, nil
}

// stagePart writes a part's bytes to a temporary file in the upload's
// directory and fsyncs it; commitPart makes it the part.
func (d *disk) stagePart(bucket, id string, r io.Reader) (tmp string, err error) {
	f, err := os.CreateTemp(d.uploadDir(bucket, id), ".tmp-*")
	if errors.Is(err, fs.ErrNotExist) {
		return "", errNoUpload
	}
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func partMetaName(n int) string { return fmt.Sprintf("part-%05d.json", n) }

// commitPart makes the staged file tmp part p of the upload, replacing an
// earlier upload of the same part number.
func (d *disk) commitPart(bucket, id, tmp string, p part) error {
	defer d.lockUpload(bucket, id)()
	dir := d.uploadDir(bucket, id)
	if _, err := os.Stat(filepath.Join(dir, "upload.json")); err != nil {
		return errNoUpload // completed or aborted meanwhile
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	p.Data = fmt.Sprintf("part-%05d-%s.data", p.Number, hex.EncodeToString(rnd[:]))
	old, _ := readPart(filepath.Join(dir, partMetaName(p.Number)))
	if err := os.Rename(tmp, filepath.Join(dir, p.Data)); err != nil {
		return err
	}
	b, _ := json.Marshal(p)
	if err := writeFileAtomic(filepath.Join(dir, partMetaName(p.Number)), b); err != nil {
		os.Remove(filepath.Join(dir, p.Data))
		return err
	}
	syncDir(dir)
	if old.Data != "" {
		os.Remove(filepath.Join(dir, filepath.Base(old.Data)))
	}
	return nil
}

func readPart(path string) (part, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return part{}, err
	}
	var p part
	if err := json.Unmarshal(b, &p); err != nil {
		return part{}, err
	}
	return p, nil
}

// parts lists the upload's parts by number.
func (d *disk) parts(bucket, id string) ([]part, error) {
	dir := d.uploadDir(bucket, id)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoUpload
	}
	if err != nil {
		return nil, err
	}
	var out []part
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, "part-") || !strings.HasSuffix(n, ".json") {
			continue
		}
		p, err := readPart(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("objects: corrupt part %s of upload %s: %w", n, id, err)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// removeUpload drops the upload and its parts (caller holds its lock).
func (d *disk) removeUpload(bucket, id string) error {
	dir := d.uploadDir(bucket, id)
	// upload.json first: from then on the upload is gone for everyone.
	if err := os.Remove(filepath.Join(dir, "upload.json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.RemoveAll(dir)
}

// assemble writes the parts' bytes, in order, to a new temporary file in
// the bucket (fsynced), passing them through w as well. The file is the
// caller's to install or remove.
func (d *disk) assemble(bucket, id string, ps []part, w io.Writer) (tmp string, size int64, err error) {
	dir := d.uploadDir(bucket, id)
	f, err := os.CreateTemp(d.bucketDir(bucket), ".tmp-*")
	if err != nil {
		return "", 0, err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	out := io.Writer(f)
	if w != nil {
		out = io.MultiWriter(f, w)
	}
	for _, p := range ps {
		pf, err := os.Open(filepath.Join(dir, filepath.Base(p.Data)))
		if err != nil {
			f.Close()
			return "", 0, err
		}
		n, err := io.Copy(out, pf)
		pf.Close()
		if err == nil && n != p.Size {
			err = fmt.Errorf("objects: part %d of upload %s has %d bytes, want %d", p.Number, id, n, p.Size)
		}
		if err != nil {
			f.Close()
			return "", 0, err
		}
		size += n
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, err
	}
	return f.Name(), size, nil
}

// install makes the complete, fsynced file tmp (in the bucket's directory)
// the data of key with metadata m, as put does: the data is renamed to a
// fresh name, then the metadata naming it replaces the old one atomically.
// cond, when not nil, decides on the current object first, under the
// store's write lock (a conditional write).
func (d *disk) install(bucket, key, tmp string, m meta, cond func(cur meta, err error) error) (meta, error) {
	dir := d.bucketDir(bucket)
	name := objName(key)
	var rnd [6]byte
	rand.Read(rnd[:])
	m.Key = key
	m.Data = name + "-" + hex.EncodeToString(rnd[:]) + ".data"
	mb, _ := json.Marshal(m)
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.hasBucket(bucket) {
		return meta{}, errNoBucket
	}
	old, oerr := d.headLocked(bucket, key)
	if cond != nil {
		if err := cond(old, oerr); err != nil {
			return meta{}, err
		}
	}
	if err := os.Rename(tmp, filepath.Join(dir, m.Data)); err != nil {
		return meta{}, err
	}
	if err := writeFileAtomic(filepath.Join(dir, name+".json"), mb); err != nil {
		os.Remove(filepath.Join(dir, m.Data))
		return meta{}, err
	}
	syncDir(dir)
	if old.Data != "" && old.Data != m.Data {
		os.Remove(filepath.Join(dir, old.Data))
	}
	return m, nil
}
