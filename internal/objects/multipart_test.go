package objects_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/writ-id/writ/internal/apptest"
)

const mib = 1 << 20

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	r.Read(b)
	return b
}

// multipartETag is S3's ETag of an object uploaded in parts of size ps.
func multipartETag(data []byte, ps int) string {
	all := md5.New()
	n := 0
	for off := 0; off < len(data); off += ps {
		s := md5.Sum(data[off:min(off+ps, len(data))])
		all.Write(s[:])
		n++
	}
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(all.Sum(nil)), n)
}

// leftovers lists what the staging areas of bucket hold.
func (f *fx) leftovers(b string) []string {
	var out []string
	root := filepath.Join(f.Cfg.DataDir, "objects", b)
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && (strings.Contains(p, ".uploads") || strings.Contains(filepath.Base(p), ".tmp-")) {
			out = append(out, strings.TrimPrefix(p, root))
		}
		return nil
	})
	return out
}

// TestMultipartWithTransferManager: the SDK's upload manager sends a 64 MiB
// object in 5 MiB parts (concurrently, with a CRC32 per part); it reads
// back byte for byte with S3's "-N" ETag, and nothing is left staged.
func TestMultipartWithTransferManager(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	alice := f.credsFor("alice", "Alice-Passw0rd")
	ac := f.client(alice.ak, alice.secret, alice.token, false)
	key := "private/" + alice.id + "/video.bin"
	data := randomBytes(64*mib, 1)
	up := manager.NewUploader(ac, func(u *manager.Uploader) { u.PartSize = 5 * mib })
	out, err := up.Upload(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data),
		ContentType: aws.String("video/mp4"), Metadata: map[string]string{"take": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	want := multipartETag(data, 5*mib)
	if !strings.HasSuffix(want, `-13"`) || aws.ToString(out.ETag) != want {
		t.Errorf("ETag %s, want %s", aws.ToString(out.ETag), want)
	}
	if len(out.CompletedParts) != 13 || out.CompletedParts[0].ChecksumCRC32 == nil {
		t.Errorf("completed parts %d %+v", len(out.CompletedParts), out.CompletedParts[0])
	}
	got, err := ac.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil || !bytes.Equal(body, data) {
		t.Fatalf("read back %d bytes (%v), differ from the 64 MiB sent", len(body), err)
	}
	if aws.ToString(got.ETag) != want || aws.ToString(got.ContentType) != "video/mp4" || got.Metadata["take"] != "3" || aws.ToInt64(got.ContentLength) != 64*mib {
		t.Errorf("GetObject: %s %s %v %d", aws.ToString(got.ETag), aws.ToString(got.ContentType), got.Metadata, aws.ToInt64(got.ContentLength))
	}
	// A range across a part boundary.
	rg, err := ac.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Range: aws.String(fmt.Sprintf("bytes=%d-%d", 5*mib-10, 5*mib+9))})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(rg.Body)
	rg.Body.Close()
	if !bytes.Equal(body, data[5*mib-10:5*mib+10]) {
		t.Error("range across parts differs")
	}
	l, err := ac.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("private/" + alice.id + "/")})
	if err != nil || len(l.Contents) != 1 || aws.ToInt64(l.Contents[0].Size) != 64*mib || aws.ToString(l.Contents[0].ETag) != want {
		t.Errorf("listing: %v %+v", err, l)
	}
	if left := f.leftovers(bucket); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	// Overwriting with a smaller multipart object: a reader meanwhile sees
	// the old object or the new one, never a mix; only the new data remains.
	small := randomBytes(6*mib, 2)
	wantSmall := multipartETag(small, 5*mib)
	stop, seen := make(chan struct{}), make(chan []string)
	go func() {
		var bad []string
		for {
			select {
			case <-stop:
				seen <- bad
				return
			default:
			}
			h, err := ac.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				bad = append(bad, err.Error())
				continue
			}
			if e, n := aws.ToString(h.ETag), aws.ToInt64(h.ContentLength); !(e == want && n == 64*mib || e == wantSmall && n == 6*mib) {
				bad = append(bad, fmt.Sprint(e, " ", n))
			}
		}
	}()
	_, err = up.Upload(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(small)})
	close(stop)
	if bad := <-seen; len(bad) > 0 {
		t.Errorf("a reader saw %q during the overwrite", bad)
	}
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := f.read(ac, bucket, key); b != string(small) {
		t.Error("overwrite: wrong bytes")
	}
	entries, _ := os.ReadDir(filepath.Join(f.Cfg.DataDir, "objects", bucket))
	var data2 int
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".data") {
			data2++
		}
	}
	if data2 != 1 {
		t.Errorf("%d data files after the overwrite, want 1", data2)
	}
	// bob may not write a multipart object into alice's prefix.
	bob := f.credsFor("bob", "Bob-Passw0rd1")
	bc := f.client(bob.ak, bob.secret, bob.token, false)
	if _, err := bc.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("private/" + alice.id + "/evil")}); code(err) != "AccessDenied" {
		t.Errorf("bob starts an upload in alice's prefix: %v", err)
	}
}

func TestMultipartErrorsAndAbort(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	b, k := aws.String(bucket), aws.String("parts/obj.bin")
	cr, err := admin.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k, ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256})
	if err != nil {
		t.Fatal(err)
	}
	id := cr.UploadId
	p1, p2, p3 := randomBytes(5*mib, 3), []byte("second, small"), []byte("third")
	etags := map[int32]*string{}
	sums := map[int32]*string{}
	for n, p := range map[int32][]byte{1: p1, 2: p2, 3: p3} {
		out, err := admin.UploadPart(f.ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(n), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		s := md5.Sum(p)
		if aws.ToString(out.ETag) != `"`+hex.EncodeToString(s[:])+`"` || out.ChecksumSHA256 == nil {
			t.Errorf("part %d: ETag %s checksum %v", n, aws.ToString(out.ETag), out.ChecksumSHA256)
		}
		etags[n], sums[n] = out.ETag, out.ChecksumSHA256
	}
	// ListParts, whole and paged.
	lp, err := admin.ListParts(f.ctx, &s3.ListPartsInput{Bucket: b, Key: k, UploadId: id})
	if err != nil || len(lp.Parts) != 3 || aws.ToInt64(lp.Parts[0].Size) != 5*mib || aws.ToInt64(lp.Parts[1].Size) != int64(len(p2)) ||
		aws.ToString(lp.Parts[2].ETag) != aws.ToString(etags[3]) || aws.ToString(lp.Parts[2].ChecksumSHA256) != aws.ToString(sums[3]) || lp.ChecksumAlgorithm != s3types.ChecksumAlgorithmSha256 {
		t.Fatalf("ListParts: %v %+v", err, lp)
	}
	pg, err := admin.ListParts(f.ctx, &s3.ListPartsInput{Bucket: b, Key: k, UploadId: id, MaxParts: aws.Int32(2)})
	if err != nil || len(pg.Parts) != 2 || !aws.ToBool(pg.IsTruncated) || aws.ToString(pg.NextPartNumberMarker) != "2" {
		t.Fatalf("ListParts paged: %v %+v", err, pg)
	}
	pg, err = admin.ListParts(f.ctx, &s3.ListPartsInput{Bucket: b, Key: k, UploadId: id, PartNumberMarker: aws.String("2")})
	if err != nil || len(pg.Parts) != 1 || aws.ToInt32(pg.Parts[0].PartNumber) != 3 || aws.ToBool(pg.IsTruncated) {
		t.Fatalf("ListParts second page: %v %+v", err, pg)
	}
	lu, err := admin.ListMultipartUploads(f.ctx, &s3.ListMultipartUploadsInput{Bucket: b})
	if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != aws.ToString(id) || aws.ToString(lu.Uploads[0].Key) != *k {
		t.Fatalf("ListMultipartUploads: %v %+v", err, lu)
	}
	part := func(n int32) s3types.CompletedPart {
		return s3types.CompletedPart{PartNumber: aws.Int32(n), ETag: etags[n]}
	}
	complete := func(ps ...s3types.CompletedPart) error {
		_, err := admin.CompleteMultipartUpload(f.ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: id,
			MultipartUpload: &s3types.CompletedMultipartUpload{Parts: ps}})
		return err
	}
	bad := []struct {
		name  string
		parts []s3types.CompletedPart
		want  string
	}{
		{"descending", []s3types.CompletedPart{part(2), part(1)}, "InvalidPartOrder"},
		{"repeated", []s3types.CompletedPart{part(1), part(1)}, "InvalidPartOrder"},
		{"never uploaded", []s3types.CompletedPart{part(1), {PartNumber: aws.Int32(7), ETag: etags[3]}}, "InvalidPart"},
		{"wrong ETag", []s3types.CompletedPart{part(1), {PartNumber: aws.Int32(3), ETag: etags[2]}}, "InvalidPart"},
		{"wrong checksum", []s3types.CompletedPart{part(1), {PartNumber: aws.Int32(3), ETag: etags[3], ChecksumSHA256: sums[2]}}, "InvalidPart"},
		{"small part not last", []s3types.CompletedPart{part(1), part(2), part(3)}, "EntityTooSmall"},
		{"no parts", nil, "MalformedXML"},
	}
	for _, c := range bad {
		if err := complete(c.parts...); code(err) != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
	if f.exists(admin, bucket, *k) {
		t.Fatal("a refused Complete made an object")
	}
	// Parts not listed are dropped: 1 and 3 make the object.
	p3c := part(3)
	p3c.ChecksumSHA256 = sums[3]
	if err := complete(part(1), p3c); err != nil {
		t.Fatal(err)
	}
	body, got := f.read(admin, bucket, *k)
	all := append(append([]byte{}, p1...), p3...)
	s1, s3sum := md5.Sum(p1), md5.Sum(p3)
	want := md5.Sum(append(s1[:], s3sum[:]...))
	if body != string(all) || aws.ToString(got.ETag) != `"`+hex.EncodeToString(want[:])+`-2"` {
		t.Errorf("completed object: %d bytes, ETag %s", len(body), aws.ToString(got.ETag))
	}
	// The upload is gone once completed.
	if _, err := admin.ListParts(f.ctx, &s3.ListPartsInput{Bucket: b, Key: k, UploadId: id}); code(err) != "NoSuchUpload" {
		t.Errorf("ListParts after Complete: %v", err)
	}
	if _, err := admin.UploadPart(f.ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(4), Body: bytes.NewReader(p3)}); code(err) != "NoSuchUpload" {
		t.Errorf("UploadPart after Complete: %v", err)
	}
	if left := f.leftovers(bucket); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}

	// Unknown upload ids, and ids of another key, are NoSuchUpload everywhere.
	cr2, err := admin.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("other")})
	if err != nil {
		t.Fatal(err)
	}
	for _, uid := range []string{"deadbeef", "../../../etc", strings.Repeat("0", 48), aws.ToString(cr2.UploadId)} {
		u := aws.String(uid)
		if _, err := admin.UploadPart(f.ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: u, PartNumber: aws.Int32(1), Body: strings.NewReader("x")}); code(err) != "NoSuchUpload" {
			t.Errorf("UploadPart %q: %v", uid, err)
		}
		if _, err := admin.ListParts(f.ctx, &s3.ListPartsInput{Bucket: b, Key: k, UploadId: u}); code(err) != "NoSuchUpload" {
			t.Errorf("ListParts %q: %v", uid, err)
		}
		if _, err := admin.CompleteMultipartUpload(f.ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: u,
			MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{part(1)}}}); code(err) != "NoSuchUpload" {
			t.Errorf("Complete %q: %v", uid, err)
		}
		if _, err := admin.AbortMultipartUpload(f.ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: k, UploadId: u}); code(err) != "NoSuchUpload" {
			t.Errorf("Abort %q: %v", uid, err)
		}
	}
	other := func(n int32, body []byte, sum *string) error {
		_, err := admin.UploadPart(f.ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("other"), UploadId: cr2.UploadId, PartNumber: aws.Int32(n),
			Body: bytes.NewReader(body), ChecksumCRC32: sum})
		return err
	}
	for _, n := range []int32{0, 10001} {
		if err := other(n, []byte("x"), nil); code(err) != "InvalidArgument" {
			t.Errorf("part number %d: %v", n, err)
		}
	}
	if err := other(1, []byte("x"), aws.String("AAAAAA==")); code(err) != "BadDigest" {
		t.Errorf("part with a wrong CRC32: %v", err)
	}
	if err := other(1, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if err := other(10000, []byte("y"), nil); err != nil {
		t.Fatal(err)
	}
	// Abort leaves nothing behind; the key never existed.
	if _, err := admin.AbortMultipartUpload(f.ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("other"), UploadId: cr2.UploadId}); err != nil {
		t.Fatal(err)
	}
	if left := f.leftovers(bucket); len(left) != 0 {
		t.Errorf("left behind after abort: %v", left)
	}
	if lu, err := admin.ListMultipartUploads(f.ctx, &s3.ListMultipartUploadsInput{Bucket: b}); err != nil || len(lu.Uploads) != 0 {
		t.Errorf("uploads after abort: %v %+v", err, lu)
	}
	if f.exists(admin, bucket, "other") {
		t.Error("an aborted upload made an object")
	}
	if _, err := admin.AbortMultipartUpload(f.ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("other"), UploadId: cr2.UploadId}); code(err) != "NoSuchUpload" {
		t.Errorf("second abort: %v", err)
	}
}

// TestMultipartPermissions: the demo role may write parts of its own
// objects but holds neither s3:AbortMultipartUpload nor
// s3:ListMultipartUploadParts.
func TestMultipartPermissions(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	bob := f.credsFor("bob", "Bob-Passw0rd1")
	bc := f.client(bob.ak, bob.secret, bob.token, true)
	b, k := aws.String(bucket), aws.String("private/"+bob.id+"/parts")
	cr, err := bc.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bc.UploadPart(f.ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.ListParts(f.ctx, &s3.ListPartsInput{Bucket: b, Key: k, UploadId: cr.UploadId}); code(err) != "AccessDenied" {
		t.Errorf("ListParts: %v", err)
	}
	if _, err := bc.AbortMultipartUpload(f.ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: k, UploadId: cr.UploadId}); code(err) != "AccessDenied" {
		t.Errorf("Abort: %v", err)
	}
	if _, err := bc.ListMultipartUploads(f.ctx, &s3.ListMultipartUploadsInput{Bucket: b}); code(err) != "AccessDenied" {
		t.Errorf("ListMultipartUploads: %v", err)
	}
	out, err := bc.CompleteMultipartUpload(f.ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: cr.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(`"9dd4e461268c8034f5c8564e155c67a6"`)}}}})
	if err != nil {
		t.Fatal(err)
	}
	s := md5.Sum([]byte{0x9d, 0xd4, 0xe4, 0x61, 0x26, 0x8c, 0x80, 0x34, 0xf5, 0xc8, 0x56, 0x4e, 0x15, 0x5c, 0x67, 0xa6})
	if aws.ToString(out.ETag) != `"`+hex.EncodeToString(s[:])+`-1"` {
		t.Errorf("ETag %s", aws.ToString(out.ETag))
	}
}

// TestListMultipartUploadsDelimiter: a listing under a prefix with "/"
// rolls deeper keys up into common prefixes, and pages by upload with
// the key and upload-id markers.
func TestListMultipartUploadsDelimiter(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	b := aws.String(bucket)
	for _, k := range []string{"dir/a", "dir/b", "dir/sub/c", "dir/sub/d", "other"} {
		if _, err := admin.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	lu, err := admin.ListMultipartUploads(f.ctx, &s3.ListMultipartUploadsInput{Bucket: b, Prefix: aws.String("dir/"), Delimiter: aws.String("/")})
	if err != nil || len(lu.Uploads) != 2 || aws.ToString(lu.Uploads[0].Key) != "dir/a" || aws.ToString(lu.Uploads[1].Key) != "dir/b" ||
		len(lu.CommonPrefixes) != 1 || aws.ToString(lu.CommonPrefixes[0].Prefix) != "dir/sub/" || aws.ToBool(lu.IsTruncated) {
		t.Fatalf("ListMultipartUploads dir/ with /: %v %+v", err, lu)
	}
	page, err := admin.ListMultipartUploads(f.ctx, &s3.ListMultipartUploadsInput{Bucket: b, Prefix: aws.String("dir/"), MaxUploads: aws.Int32(3)})
	if err != nil || len(page.Uploads) != 3 || !aws.ToBool(page.IsTruncated) || aws.ToString(page.NextKeyMarker) != "dir/sub/c" {
		t.Fatalf("first page: %v %+v", err, page)
	}
	rest, err := admin.ListMultipartUploads(f.ctx, &s3.ListMultipartUploadsInput{Bucket: b, Prefix: aws.String("dir/"),
		KeyMarker: page.NextKeyMarker, UploadIdMarker: page.NextUploadIdMarker})
	if err != nil || len(rest.Uploads) != 1 || aws.ToString(rest.Uploads[0].Key) != "dir/sub/d" || aws.ToBool(rest.IsTruncated) {
		t.Fatalf("second page: %v %+v", err, rest)
	}
}

// TestGetObjectPartNumber: GetObject and HeadObject with a part number
// serve that part of a multipart object (206, its Content-Range, the parts
// count), as multipart downloaders read objects; an object put whole is
// one part; a part past the last is InvalidPartNumber.
func TestGetObjectPartNumber(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	first, second := bytes.Repeat([]byte("1"), 5<<20), []byte("the last part")
	cu, err := admin.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("parts")})
	if err != nil {
		t.Fatal(err)
	}
	var parts []s3types.CompletedPart
	for i, b := range [][]byte{first, second} {
		up, err := admin.UploadPart(f.ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("parts"), UploadId: cu.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(b)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, s3types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := admin.CompleteMultipartUpload(f.ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("parts"),
		UploadId: cu.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}
	get := func(key string, n int32) ([]byte, *s3.GetObjectOutput, error) {
		out, err := admin.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), PartNumber: aws.Int32(n)})
		if err != nil {
			return nil, nil, err
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		return b, out, err
	}
	for n, want := range map[int32][]byte{1: first, 2: second} {
		b, out, err := get("parts", n)
		wantRange := fmt.Sprintf("bytes %d-%d/%d", map[int32]int{1: 0, 2: len(first)}[n], map[int32]int{1: len(first) - 1, 2: len(first) + len(second) - 1}[n], len(first)+len(second))
		if err != nil || !bytes.Equal(b, want) || aws.ToInt32(out.PartsCount) != 2 || aws.ToString(out.ContentRange) != wantRange {
			t.Fatalf("part %d: %d bytes, parts count %d, range %q, %v", n, len(b), aws.ToInt32(out.PartsCount), aws.ToString(out.ContentRange), err)
		}
	}
	if _, _, err := get("parts", 3); code(err) != "InvalidPartNumber" {
		t.Errorf("part 3 of 2: %v", err)
	}
	head, err := admin.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("parts"), PartNumber: aws.Int32(2)})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len(second)) || aws.ToInt32(head.PartsCount) != 2 {
		t.Errorf("HeadObject part 2: %+v %v", head, err)
	}
	// An object put whole is one part.
	if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("whole"), Body: strings.NewReader("whole body")}); err != nil {
		t.Fatal(err)
	}
	if b, out, err := get("whole", 1); err != nil || string(b) != "whole body" || out.PartsCount != nil {
		t.Errorf("part 1 of an object put whole: %q %v", b, err)
	}
	if _, _, err := get("whole", 2); code(err) != "InvalidPartNumber" {
		t.Errorf("part 2 of an object put whole: %v", err)
	}
	_, err = admin.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("whole"), PartNumber: aws.Int32(1), Range: aws.String("bytes=0-1")})
	if code(err) != "InvalidRequest" {
		t.Errorf("part number and Range: %v", err)
	}
}

// TestListMultipartUploadsEncodingTypeURL: with encoding-type=url the
// keys, prefixes, delimiter and key markers of ListMultipartUploads come
// URL-encoded, so keys XML cannot carry (a control byte) and "+" come back
// intact once decoded and paging resumes at the decoded NextKeyMarker;
// another encoding type is InvalidArgument.
func TestListMultipartUploadsEncodingTypeURL(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	b := aws.String(bucket)
	for _, k := range []string{"mpu/a b+c", "mpu/ctl\x01x", "mpu/dir/é"} {
		if _, err := admin.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	decoded := func(s *string) string {
		t.Helper()
		d, err := url.QueryUnescape(aws.ToString(s))
		if err != nil {
			t.Fatalf("%q is not URL-encoded: %v", aws.ToString(s), err)
		}
		return d
	}
	lu, err := admin.ListMultipartUploads(f.ctx, &s3.ListMultipartUploadsInput{Bucket: b, Prefix: aws.String("mpu/"), Delimiter: aws.String("/"),
		EncodingType: s3types.EncodingTypeUrl})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range lu.Uploads {
		got = append(got, decoded(u.Key))
	}
	for _, p := range lu.CommonPrefixes {
		got = append(got, decoded(p.Prefix))
	}
	if want := []string{"mpu/a b+c", "mpu/ctl\x01x", "mpu/dir/"}; !slices.Equal(got, want) || lu.EncodingType != s3types.EncodingTypeUrl ||
		aws.ToString(lu.Prefix) != "mpu%2F" || aws.ToString(lu.Delimiter) != "%2F" {
		t.Fatalf("decoded listing %q (encoding %q, prefix %q, delimiter %q), want %q", got, lu.EncodingType, aws.ToString(lu.Prefix),
			aws.ToString(lu.Delimiter), want)
	}
	// Paging: the markers come encoded; decoded, the next page resumes.
	page, err := admin.ListMultipartUploads(f.ctx, &s3.ListMultipartUploadsInput{Bucket: b, Prefix: aws.String("mpu/"), KeyMarker: aws.String("mpu/a b"),
		MaxUploads: aws.Int32(1), EncodingType: s3types.EncodingTypeUrl})
	if err != nil || len(page.Uploads) != 1 || !aws.ToBool(page.IsTruncated) || decoded(page.Uploads[0].Key) != "mpu/a b+c" ||
		aws.ToString(page.KeyMarker) != "mpu%2Fa+b" || aws.ToString(page.NextKeyMarker) != "mpu%2Fa+b%2Bc" {
		t.Fatalf("first page: %v %+v", err, page)
	}
	rest, err := admin.ListMultipartUploads(f.ctx, &s3.ListMultipartUploadsInput{Bucket: b, Prefix: aws.String("mpu/"), KeyMarker: aws.String(decoded(page.NextKeyMarker)),
		UploadIdMarker: page.NextUploadIdMarker, MaxUploads: aws.Int32(1), EncodingType: s3types.EncodingTypeUrl})
	if err != nil || len(rest.Uploads) != 1 || decoded(rest.Uploads[0].Key) != "mpu/ctl\x01x" {
		t.Fatalf("second page: %v %+v", err, rest)
	}
	if status, body := f.raw("GET", "/"+bucket+"?uploads&encoding-type=bogus", nil, nil); status != 400 || !strings.Contains(body, "<Code>InvalidArgument</Code>") {
		t.Errorf("encoding-type=bogus: %d %s", status, body)
	}
	// Without encoding-type, keys come as they are.
	plain, err := admin.ListMultipartUploads(f.ctx, &s3.ListMultipartUploadsInput{Bucket: b, Prefix: aws.String("mpu/a")})
	if err != nil || len(plain.Uploads) != 1 || aws.ToString(plain.Uploads[0].Key) != "mpu/a b+c" || plain.EncodingType != "" {
		t.Errorf("without encoding-type: %v %+v", err, plain)
	}
}

// TestChecksumsServedBack: an object's checksum, as PutObject or
// CompleteMultipartUpload checked it, comes back on GetObject and
// HeadObject with ChecksumMode ENABLED (with its type; the SDK validates
// a full-object one against the body), survives CopyObject, and is not
// sent for a range or without the mode.
func TestChecksumsServedBack(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	b := aws.String(bucket)
	body := []byte("checksummed body")
	put, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("sum/whole"), Body: bytes.NewReader(body),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32c})
	if err != nil || put.ChecksumCRC32C == nil || put.ChecksumType != s3types.ChecksumTypeFullObject {
		t.Fatalf("PutObject: %v %+v", err, put)
	}
	get, err := admin.GetObject(f.ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("sum/whole"), ChecksumMode: s3types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(get.Body) // the SDK checks the body against the checksum as it reads
	get.Body.Close()
	if err != nil || !bytes.Equal(got, body) || aws.ToString(get.ChecksumCRC32C) != aws.ToString(put.ChecksumCRC32C) || get.ChecksumType != s3types.ChecksumTypeFullObject {
		t.Fatalf("GetObject: %v %q %v %q", err, got, aws.ToString(get.ChecksumCRC32C), get.ChecksumType)
	}
	if h, err := admin.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("sum/whole")}); err != nil || h.ChecksumCRC32C != nil {
		t.Errorf("HeadObject without the mode: %v %v", err, aws.ToString(h.ChecksumCRC32C))
	}
	if r, err := admin.GetObject(f.ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("sum/whole"), Range: aws.String("bytes=0-3"),
		ChecksumMode: s3types.ChecksumModeEnabled}); err != nil || r.ChecksumCRC32C != nil {
		t.Errorf("a range: %v %v", err, r)
	} else {
		r.Body.Close()
	}
	if _, err := admin.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("sum/copy"), CopySource: aws.String(bucket + "/sum/whole")}); err != nil {
		t.Fatal(err)
	}
	if h, err := admin.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("sum/copy"), ChecksumMode: s3types.ChecksumModeEnabled}); err != nil ||
		aws.ToString(h.ChecksumCRC32C) != aws.ToString(put.ChecksumCRC32C) {
		t.Errorf("HeadObject of the copy: %v %v", err, h)
	}

	// A multipart object's composite checksum.
	k := aws.String("sum/parts")
	cr, err := admin.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k, ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256})
	if err != nil {
		t.Fatal(err)
	}
	var parts []s3types.CompletedPart
	for n, p := range [][]byte{randomBytes(5*mib, 9), []byte("tail")} {
		out, err := admin.UploadPart(f.ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: cr.UploadId, PartNumber: aws.Int32(int32(n + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, s3types.CompletedPart{PartNumber: aws.Int32(int32(n + 1)), ETag: out.ETag, ChecksumSHA256: out.ChecksumSHA256})
	}
	done, err := admin.CompleteMultipartUpload(f.ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: cr.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: b, Key: k, ChecksumMode: s3types.ChecksumModeEnabled})
	if err != nil || aws.ToString(h.ChecksumSHA256) != aws.ToString(done.ChecksumSHA256) || !strings.HasSuffix(aws.ToString(h.ChecksumSHA256), "-2") ||
		h.ChecksumType != s3types.ChecksumTypeComposite {
		t.Fatalf("HeadObject of a multipart object: %v %v %q (Complete said %v)", err, aws.ToString(h.ChecksumSHA256), h.ChecksumType, aws.ToString(done.ChecksumSHA256))
	}
	// Its copy is one part: the composite checksum, the parts', does not go along.
	if _, err := admin.CopyObject(f.ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("sum/parts-copy"), CopySource: aws.String(bucket + "/sum/parts")}); err != nil {
		t.Fatal(err)
	}
	if h, err := admin.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("sum/parts-copy"), ChecksumMode: s3types.ChecksumModeEnabled}); err != nil || h.ChecksumSHA256 != nil {
		t.Errorf("HeadObject of the multipart object's copy: %v %v", err, aws.ToString(h.ChecksumSHA256))
	}
}
