package objects_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/writ-id/writ/internal/apptest"
)

var listKeys = []string{"lst/a/1", "lst/a/2", "lst/a/3", "lst/b/1", "lst/b/2", "lst/c", "lst/d", "other"}

func (f *fx) listingBucket() *s3.Client {
	f.t.Helper()
	admin := f.client(adminAK, adminSecret, "", true)
	if _, err := admin.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("listing")}); err != nil {
		f.t.Fatal(err)
	}
	for _, k := range listKeys {
		if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String("listing"), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			f.t.Fatal(err)
		}
	}
	return admin
}

// TestListObjectsV2PagesWithDelimiter: through the SDK's paginator, each
// common prefix appears on exactly one page, MaxKeys counts keys and common
// prefixes alike, and the next page resumes after the whole prefix.
func TestListObjectsV2PagesWithDelimiter(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.listingBucket()
	cases := []struct {
		delim string
		max   int32
		want  []string
	}{
		{"/", 1, []string{"lst/a/", "lst/b/", "lst/c", "lst/d"}},
		{"/", 2, []string{"lst/a/", "lst/b/", "lst/c", "lst/d"}},
		{"/", 3, []string{"lst/a/", "lst/b/", "lst/c", "lst/d"}},
		{"", 2, []string{"lst/a/1", "lst/a/2", "lst/a/3", "lst/b/1", "lst/b/2", "lst/c", "lst/d"}},
	}
	for _, c := range cases {
		in := &s3.ListObjectsV2Input{Bucket: aws.String("listing"), Prefix: aws.String("lst/"), MaxKeys: aws.Int32(c.max)}
		if c.delim != "" {
			in.Delimiter = aws.String(c.delim)
		}
		p := s3.NewListObjectsV2Paginator(admin, in)
		var got []string
		pages := 0
		for p.HasMorePages() && pages < 20 {
			page, err := p.NextPage(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			n := len(page.Contents) + len(page.CommonPrefixes)
			if n > int(c.max) || int(aws.ToInt32(page.KeyCount)) != n {
				t.Errorf("delimiter %q max %d: page %d has %d entries, KeyCount %d", c.delim, c.max, pages, n, aws.ToInt32(page.KeyCount))
			}
			got = append(got, entries(page.Contents, page.CommonPrefixes)...)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("delimiter %q max %d: listed %v in %d pages, want %v", c.delim, c.max, got, pages, c.want)
		}
		if want := (len(c.want) + int(c.max) - 1) / int(c.max); pages != want {
			t.Errorf("delimiter %q max %d: %d pages, want %d", c.delim, c.max, pages, want)
		}
	}
	// StartAfter is a key: the rest of a common prefix after it is listed.
	l, err := admin.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String("listing"), Prefix: aws.String("lst/"), Delimiter: aws.String("/"), StartAfter: aws.String("lst/a/2")})
	if got := entries(l.Contents, l.CommonPrefixes); err != nil || !slices.Equal(got, []string{"lst/a/", "lst/b/", "lst/c", "lst/d"}) {
		t.Errorf("StartAfter lst/a/2: %v %v", err, got)
	}
	// A continuation token that is not one writ gave is refused, not read
	// as some entry (an empty last page).
	if status, _ := f.raw("GET", "/listing?list-type=2&continuation-token=", nil, nil); status != 400 {
		t.Errorf("an empty continuation token: %d, want 400", status)
	}
	for _, tok := range []string{"garbage", "bHN0L2Iv", "not base64!"} {
		_, err := admin.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String("listing"), Prefix: aws.String("lst/"), ContinuationToken: aws.String(tok)})
		if code(err) != "InvalidArgument" {
			t.Errorf("continuation token %q: %v, want InvalidArgument", tok, err)
		}
	}
}

// TestListObjectsV1Marker: ListObjects (V1) honours marker and returns
// NextMarker when truncated, so paging ends and lists everything once.
func TestListObjectsV1Marker(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.listingBucket()
	for _, c := range []struct {
		delim string
		max   int32
		want  []string
	}{
		{"/", 1, []string{"lst/a/", "lst/b/", "lst/c", "lst/d"}},
		{"/", 3, []string{"lst/a/", "lst/b/", "lst/c", "lst/d"}},
		{"", 2, []string{"lst/a/1", "lst/a/2", "lst/a/3", "lst/b/1", "lst/b/2", "lst/c", "lst/d"}},
		{"", 1000, []string{"lst/a/1", "lst/a/2", "lst/a/3", "lst/b/1", "lst/b/2", "lst/c", "lst/d"}},
	} {
		var got []string
		marker := ""
		for pages := 0; ; pages++ {
			if pages == 20 {
				t.Fatalf("delimiter %q max %d: paging does not end: %v", c.delim, c.max, got)
			}
			in := &s3.ListObjectsInput{Bucket: aws.String("listing"), Prefix: aws.String("lst/"), MaxKeys: aws.Int32(c.max), Marker: aws.String(marker)}
			if c.delim != "" {
				in.Delimiter = aws.String(c.delim)
			}
			page, err := admin.ListObjects(f.ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(page.Marker) != marker {
				t.Errorf("Marker %q, sent %q", aws.ToString(page.Marker), marker)
			}
			got = append(got, entries(page.Contents, page.CommonPrefixes)...)
			if !aws.ToBool(page.IsTruncated) {
				if page.NextMarker != nil {
					t.Errorf("NextMarker %q on the last page", aws.ToString(page.NextMarker))
				}
				break
			}
			marker = aws.ToString(page.NextMarker)
			if marker == "" {
				t.Fatalf("delimiter %q max %d: truncated without NextMarker", c.delim, c.max)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("delimiter %q max %d: listed %v, want %v", c.delim, c.max, got, c.want)
		}
	}
}

// entries is a listing page's keys and common prefixes, in order.
func entries(cs []s3types.Object, ps []s3types.CommonPrefix) []string {
	var out []string
	for _, c := range cs {
		out = append(out, aws.ToString(c.Key))
	}
	for _, p := range ps {
		out = append(out, aws.ToString(p.Prefix))
	}
	slices.Sort(out)
	return out
}

// TestListEncodingTypeURL: with encoding-type=url a listing's keys and
// prefixes come URL-encoded, so keys XML cannot carry (a control byte)
// come back intact; another encoding type is InvalidArgument; max-keys 0
// lists nothing and says nothing follows.
func TestListEncodingTypeURL(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.client(adminAK, adminSecret, "", true)
	keys := []string{"enc/ctl\x01x", "enc/a b+c", "enc/dir/é"}
	for _, k := range keys {
		if _, err := admin.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := admin.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("enc/"), Delimiter: aws.String("/"),
		EncodingType: s3types.EncodingTypeUrl})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range out.Contents {
		k, err := url.QueryUnescape(aws.ToString(c.Key))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	for _, p := range out.CommonPrefixes {
		k, _ := url.QueryUnescape(aws.ToString(p.Prefix))
		got = append(got, k)
	}
	if want := []string{"enc/a b+c", "enc/ctl\x01x", "enc/dir/"}; !slices.Equal(got, want) || out.EncodingType != s3types.EncodingTypeUrl {
		t.Fatalf("decoded listing %q (encoding %q), want %q", got, out.EncodingType, want)
	}
	resp, _ := f.rawResp("GET", "/"+bucket+"?list-type=2&encoding-type=bogus", nil, nil)
	if resp.StatusCode != 400 {
		t.Errorf("encoding-type=bogus: %d", resp.StatusCode)
	}
	// Without encoding-type=url, a page holding the control character is
	// refused (XML cannot carry it; it would come back as another key, and
	// V1's NextMarker after it would skip the rest); one without it lists.
	if _, err := admin.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("enc/")}); code(err) != "InvalidArgument" {
		t.Errorf("a listing with a control character, not url-encoded: %v, want InvalidArgument", err)
	}
	if _, err := admin.ListObjects(f.ctx, &s3.ListObjectsInput{Bucket: aws.String(bucket), Prefix: aws.String("enc/c")}); code(err) != "InvalidArgument" {
		t.Errorf("V1, the same: %v, want InvalidArgument", err)
	}
	if l, err := admin.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("enc/d")}); err != nil || len(l.Contents) != 1 {
		t.Errorf("a listing without one: %v %v", err, l)
	}
	zero, err := admin.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("enc/"), MaxKeys: aws.Int32(0)})
	if err != nil || len(zero.Contents) != 0 || aws.ToBool(zero.IsTruncated) {
		t.Errorf("max-keys 0: %d keys, truncated %v, %v", len(zero.Contents), aws.ToBool(zero.IsTruncated), err)
	}
}

// TestListObjectsV2FetchOwner: with fetch-owner=true every object of a
// ListObjectsV2 page names its owner, the account ListBuckets names;
// without it (S3's default for V2) none does.
func TestListObjectsV2FetchOwner(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.listingBucket()
	lb, err := admin.ListBuckets(f.ctx, &s3.ListBucketsInput{})
	if err != nil || lb.Owner == nil || aws.ToString(lb.Owner.ID) == "" {
		t.Fatalf("ListBuckets: %v %+v", err, lb)
	}
	account := aws.ToString(lb.Owner.ID)
	p := s3.NewListObjectsV2Paginator(admin, &s3.ListObjectsV2Input{Bucket: aws.String("listing"), MaxKeys: aws.Int32(3), FetchOwner: aws.Bool(true)})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			n++
			if o.Owner == nil || aws.ToString(o.Owner.ID) != account || aws.ToString(o.Owner.DisplayName) != account {
				t.Errorf("fetch-owner: %s has owner %+v, want %s", aws.ToString(o.Key), o.Owner, account)
			}
		}
	}
	if n != len(listKeys) {
		t.Errorf("fetch-owner: listed %d objects, want %d", n, len(listKeys))
	}
	for _, fetch := range []*bool{nil, aws.Bool(false)} {
		l, err := admin.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String("listing"), FetchOwner: fetch})
		if err != nil || len(l.Contents) != len(listKeys) {
			t.Fatalf("FetchOwner %v: %v %+v", fetch, err, l)
		}
		for _, o := range l.Contents {
			if o.Owner != nil {
				t.Errorf("FetchOwner %v: %s has owner %+v", fetch, aws.ToString(o.Key), *o.Owner)
			}
		}
	}
}

// TestListOwners: ListObjects (V1) names every object's owner, as S3
// always does there, and ListBuckets its owner with a DisplayName too: the
// account, as ListObjectsV2 with fetch-owner names it.
func TestListOwners(t *testing.T) {
	f := &fx{Env: apptest.Start(t), t: t, ctx: context.Background()}
	admin := f.listingBucket()
	account := f.Cfg.Account
	lb, err := admin.ListBuckets(f.ctx, &s3.ListBucketsInput{})
	if err != nil || lb.Owner == nil || aws.ToString(lb.Owner.ID) != account || aws.ToString(lb.Owner.DisplayName) != account {
		t.Fatalf("ListBuckets owner: %v %+v", err, lb.Owner)
	}
	l, err := admin.ListObjects(f.ctx, &s3.ListObjectsInput{Bucket: aws.String("listing")})
	if err != nil || len(l.Contents) != len(listKeys) {
		t.Fatalf("ListObjects: %v %+v", err, l)
	}
	for _, o := range l.Contents {
		if o.Owner == nil || aws.ToString(o.Owner.ID) != account || aws.ToString(o.Owner.DisplayName) != account {
			t.Errorf("ListObjects: %s has owner %+v, want %s", aws.ToString(o.Key), o.Owner, account)
		}
	}
}
