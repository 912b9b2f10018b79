package clientip_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/writ-id/writ/internal/clientip"
)

// TestFromForwarded: Forwarded's for= is read as X-Forwarded-For is (from
// the right, past trusted hops, only from a trusted peer), and the proto=
// taken is that of the element the walk ends at.
func TestFromForwarded(t *testing.T) {
	tr := mustNew(t, trustedForTables...)
	for _, c := range []struct {
		name  string
		peer  string
		lines []string // Forwarded header lines, as received
		want  string
		proto string
	}{
		// The RFC's example, from a trusted peer: the rightmost element
		// names the client.
		{"RFC 7239 example", "10.0.0.5:4000", []string{`for=192.0.2.60;proto=https;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"`}, "[2001:db8:cafe::17]:4711", ""},
		{"RFC example, proxy's element trusted", "10.0.0.5:4000", []string{`for=192.0.2.60;proto=https;by=203.0.113.43, for=10.0.0.6;proto=http`}, "192.0.2.60:0", "https"},

		// An untrusted peer: Forwarded is the client's to write.
		{"untrusted peer", "198.51.100.7:4000", []string{"for=203.0.113.9;proto=https"}, "198.51.100.7:4000", ""},
		{"untrusted IPv6 peer", "[2001:db8:bbbb::1]:4000", []string{`for="[2001:db8:cccc::1]"`}, "[2001:db8:bbbb::1]:4000", ""},
		{"a peer that is not host:port", "@", []string{"for=203.0.113.9"}, "@", ""},
		{"no header", "10.0.0.5:4000", nil, "10.0.0.5:4000", ""},

		// A trusted peer.
		{"one proxy", "10.0.0.5:4000", []string{"for=203.0.113.9"}, "203.0.113.9:0", ""},
		{"one proxy with proto", "10.0.0.5:4000", []string{"for=203.0.113.9;proto=https"}, "203.0.113.9:0", "https"},
		{"proto in upper case, quoted", "10.0.0.5:4000", []string{`for=203.0.113.9;proto="HTTPS"`}, "203.0.113.9:0", "https"},
		{"proto other than http(s)", "10.0.0.5:4000", []string{"for=203.0.113.9;proto=ftp"}, "203.0.113.9:0", ""},
		{"parameter names in any case and order", "10.0.0.5:4000", []string{"Proto=https;By=10.0.0.5;FOR=203.0.113.9"}, "203.0.113.9:0", "https"},
		{"spoofed elements left of the client", "10.0.0.5:4000", []string{"for=1.1.1.1;proto=https, for=10.9.9.9, for=203.0.113.9;proto=http"}, "203.0.113.9:0", "http"},
		{"a spoofed proto left of the client is not taken", "10.0.0.5:4000", []string{"for=6.6.6.6;proto=https, for=203.0.113.9"}, "203.0.113.9:0", ""},
		{"two trusted hops: the first hop's proto", "10.0.0.5:4000", []string{"for=203.0.113.9;proto=https, for=10.0.0.6;proto=http"}, "203.0.113.9:0", "https"},
		{"IPv4 with port, quoted", "10.0.0.5:4000", []string{`for="203.0.113.9:5678"`}, "203.0.113.9:5678", ""},
		{"IPv6 in brackets, no port", "10.0.0.5:4000", []string{`for="[2001:db8:cccc::42]"`}, "[2001:db8:cccc::42]:0", ""},
		{"IPv6 trusted hop skipped", "[::1]:4000", []string{`for="[2001:db8:cccc::42]", for="[2001:db8:aaaa::2]:80"`}, "[2001:db8:cccc::42]:0", ""},
		{"IPv4-mapped client", "10.0.0.5:4000", []string{`for="[::ffff:203.0.113.9]"`}, "203.0.113.9:0", ""},
		{"obfuscated port", "10.0.0.5:4000", []string{`for="[2001:db8:cccc::42]:_p1"`}, "[2001:db8:cccc::42]:0", ""},
		{"obfuscated port, IPv4", "10.0.0.5:4000", []string{`for="203.0.113.9:_a.b-c"`}, "203.0.113.9:0", ""},
		{"unquoted forms proxies write", "10.0.0.5:4000", []string{"for=203.0.113.9:5678"}, "203.0.113.9:5678", ""},
		{"unquoted bare IPv6", "10.0.0.5:4000", []string{"for=2001:db8:cccc::42"}, "[2001:db8:cccc::42]:0", ""},
		{"unquoted brackets", "10.0.0.5:4000", []string{"for=[2001:db8:cccc::42]:443"}, "[2001:db8:cccc::42]:443", ""},
		{"quoted pairs", "10.0.0.5:4000", []string{`for="\2\0\3.0.113.9"`}, "203.0.113.9:0", ""},
		{"whitespace around separators", "10.0.0.5:4000", []string{" for=1.1.1.1 ,\tfor=203.0.113.9 ; proto=https ;\t"}, "203.0.113.9:0", "https"},
		{"a comma inside quotes is not a separator", "10.0.0.5:4000", []string{`for=203.0.113.9;ext="a, for=10.0.0.7"`}, "203.0.113.9:0", ""},
		{"other parameters and extensions skipped", "10.0.0.5:4000", []string{`for=203.0.113.9;by="[2001:db8::1]:_x";host=id.example.com;secret=x;secret=y`}, "203.0.113.9:0", ""},
		{"empty elements are skipped", "10.0.0.5:4000", []string{",, for=203.0.113.9 ,, ,"}, "203.0.113.9:0", ""},
		{"empty elements between trusted hops", "10.0.0.5:4000", []string{"for=203.0.113.9, , for=10.0.0.6,"}, "203.0.113.9:0", ""},

		// Several lines are one list, in order.
		{"lines in order", "10.0.0.5:4000", []string{"for=1.1.1.1", "for=203.0.113.9;proto=https", "for=10.0.0.6"}, "203.0.113.9:0", "https"},
		{"the last line is the nearest proxy's", "10.0.0.5:4000", []string{"for=203.0.113.9", "for=198.51.100.1"}, "198.51.100.1:0", ""},
		{"an empty line is no element", "10.0.0.5:4000", []string{"for=203.0.113.9", ""}, "203.0.113.9:0", ""},
		{"only empty lines", "10.0.0.5:4000", []string{"", " , "}, "10.0.0.5:4000", ""},

		// Every element a trusted proxy: the leftmost, with its proto.
		{"all trusted", "10.0.0.5:4000", []string{"for=10.0.0.8;proto=https, for=10.0.0.7;proto=http"}, "10.0.0.8:0", "https"},
		{"all trusted over lines", "10.0.0.5:4000", []string{"for=127.0.0.1", `for="[::1]", for=10.0.0.6`}, "127.0.0.1:0", ""},

		// unknown, obfuscated, missing or garbage for= reached: the peer,
		// with the proto of that element, which a trusted proxy wrote.
		{"unknown", "10.0.0.5:4000", []string{"for=unknown;proto=https"}, "10.0.0.5:4000", "https"},
		{"unknown with port", "10.0.0.5:4000", []string{`for="unknown:4711"`}, "10.0.0.5:4000", ""},
		{"obfuscated node", "10.0.0.5:4000", []string{"for=_hidden;proto=https"}, "10.0.0.5:4000", "https"},
		{"obfuscated node with port", "10.0.0.5:4000", []string{`for="_hidden:_p"`}, "10.0.0.5:4000", ""},
		{"obfuscated behind a trusted hop", "10.0.0.5:4000", []string{"for=203.0.113.9, for=_SEVKISEK, for=10.0.0.6"}, "10.0.0.5:4000", ""},
		{"no for=", "10.0.0.5:4000", []string{"proto=https;by=10.0.0.5"}, "10.0.0.5:4000", "https"},
		{"no for= behind a trusted hop", "10.0.0.5:4000", []string{"for=203.0.113.9, proto=https, for=10.0.0.6"}, "10.0.0.5:4000", "https"},
		{"host name", "10.0.0.5:4000", []string{"for=client.example.com"}, "10.0.0.5:4000", ""},
		{"empty quoted for=", "10.0.0.5:4000", []string{`for=""`}, "10.0.0.5:4000", ""},
		{"bracketed IPv4", "10.0.0.5:4000", []string{`for="[203.0.113.9]"`}, "10.0.0.5:4000", ""},
		{"zone", "10.0.0.5:4000", []string{`for="[fe80::1%eth0]"`}, "10.0.0.5:4000", ""},
		{"bad port", "10.0.0.5:4000", []string{`for="203.0.113.9:99999"`}, "10.0.0.5:4000", ""},
		{"obfuscated port on a bare IPv6", "10.0.0.5:4000", []string{`for="2001:db8::1:_x"`}, "10.0.0.5:4000", ""},
		{"obfuscated port on garbage", "10.0.0.5:4000", []string{`for="[nope]:_x"`}, "10.0.0.5:4000", ""},
		{"a lone underscore is not an identifier", "10.0.0.5:4000", []string{`for="203.0.113.9:_"`}, "10.0.0.5:4000", ""},
	} {
		got, f := tr.FromForwarded(c.peer, c.lines)
		if got != c.want || f.Proto != c.proto {
			t.Errorf("%s: FromForwarded(%q, %q) = %q, %q; want %q, %q", c.name, c.peer, c.lines, got, f.Proto, c.want, c.proto)
		}
	}
}

// TestForwardedMalformed: what is not a list of forwarded-elements ends
// the walk where it is reached, with the peer and no proto, and never
// panics, whatever its size; what a client wrote left of the elements
// trusted proxies appended is never reached, however malformed.
func TestForwardedMalformed(t *testing.T) {
	tr := mustNew(t, trustedForTables...)
	const peer = "10.0.0.5:4000"
	huge := func(s string) string { return strings.Repeat(s, 1<<20/len(s)) } // 1 MiB
	for _, c := range []struct {
		name string
		line string
		want string
	}{
		{"unterminated quote", `for="203.0.113.9`, peer},
		{"unterminated quote after a quoted pair", `for="203.0.113.9\"`, peer},
		{"a lone quote", `"`, peer},
		{"only a closing quote", `for=203.0.113.9"`, peer},
		{"quoted string then garbage", `for="203.0.113.9"x`, peer},
		{"escape at the end", `for="203.0.113.9\`, peer},
		{"control character in quotes", "for=\"203.0.113.9\x00\"", peer},
		{"control character unquoted", "for=203.0.113.9\x01", peer},
		{"newline", "for=203.0.113.9\nproto=https", peer},
		{"non-ASCII unquoted", "for=203.0.113.9\xff", peer},
		{"no value", "for=", peer},
		{"no name", "=203.0.113.9", peer},
		{"no =", "for", peer},
		{"space around =", "for = 203.0.113.9", peer},
		{"pairs without ;", "for=203.0.113.9 proto=https", peer},
		{"for= twice", "for=203.0.113.9;for=198.51.100.1", peer},
		{"proto= twice", "for=203.0.113.9;proto=https;proto=http", peer},
		{"by= twice", "for=203.0.113.9;by=a;by=b", peer},
		{"name with a bad character", "f(r=203.0.113.9", peer},
		{"value with a quote inside", `for=203.0.1"13.9"`, peer},
		{"only separators", ";;;", peer},
		{"XFF written in Forwarded", "203.0.113.9", peer},
		{"malformed behind a trusted hop", `for=203.0.113.9, for"x, for=10.0.0.6`, peer},
		{"huge garbage", huge("x"), peer},
		{"huge quotes", huge(`"`), peer},
		{"huge backslashes", huge(`\`), peer},
		{"huge escaped quotes", `for="` + huge(`\"`), peer},
		{"huge empty elements", huge(","), peer},
		{"huge list of trusted hops", "for=203.0.113.1" + huge(", for=10.0.0.1"), "203.0.113.1:0"},
		{"huge pair list", "for=203.0.113.1" + huge(";x=y"), "203.0.113.1:0"},

		// What a client wrote on the line a proxy appended to.
		{"client's unterminated quote left of the proxy's element", `for="6.6.6.6, for=203.0.113.9`, "203.0.113.9:0"},
		{"client's dangling escape left of it", `for="x\, for="203.0.113.9"`, "203.0.113.9:0"},
		{"client's garbage left of it", `<script>;;==", for=203.0.113.9`, "203.0.113.9:0"},
		{"client's huge quotes left of it", huge(`"`) + ", for=203.0.113.9", "203.0.113.9:0"},
		{"client's huge backslashes left of it", huge(`\`) + `, for="[2001:db8:cccc::42]:1"`, "[2001:db8:cccc::42]:1"},
	} {
		got, f := tr.FromForwarded(peer, []string{c.line})
		if got != c.want || (got == peer && f.Proto != "") {
			name := c.line
			if len(name) > 80 {
				name = name[:80] + "…"
			}
			t.Errorf("%s: FromForwarded(%q) = %q, %q; want %q", c.name, name, got, f.Proto, c.want)
		}
	}
	// The same from an untrusted peer: the peer, unread.
	if got, f := tr.FromForwarded("198.51.100.7:4000", []string{`for="`, huge(`\"`)}); got != "198.51.100.7:4000" || f.Proto != "" {
		t.Errorf("untrusted: %q %q", got, f.Proto)
	}
}

// TestForwardedReadsAsXFF: each X-Forwarded-For case, its entries written
// as quoted for= values of Forwarded elements, gives the same client.
func TestForwardedReadsAsXFF(t *testing.T) {
	tr := mustNew(t, trustedForTables...)
	for _, c := range xffCases {
		var lines []string
		for _, l := range c.xff {
			var els []string
			for _, e := range strings.Split(l, ",") {
				els = append(els, "for="+quote(strings.TrimSpace(e)))
			}
			lines = append(lines, strings.Join(els, ", "))
		}
		if got, _ := tr.FromForwarded(c.peer, lines); got != c.want {
			t.Errorf("%s: FromForwarded(%q, %q) = %q, want %q", c.name, c.peer, lines, got, c.want)
		}
	}
}

// quote writes s as an RFC 9110 quoted string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// TestClient: requests as a listener receives them, from trusted and
// untrusted peers, with X-Forwarded-For, Forwarded, both or neither:
// X-Forwarded-For (and X-Forwarded-Proto) when present, else Forwarded.
func TestClient(t *testing.T) {
	tr := mustNew(t, "10.0.0.0/8", "::1")
	type hdr = [][2]string // header lines in order, as a proxy adds them
	for _, c := range []struct {
		name   string
		peer   string
		header hdr
		want   string
		proto  string
	}{
		{"untrusted, X-Forwarded-For", "198.51.100.7:4000", hdr{{"X-Forwarded-For", "203.0.113.9"}, {"X-Forwarded-Proto", "https"}}, "198.51.100.7:4000", ""},
		{"untrusted, Forwarded", "198.51.100.7:4000", hdr{{"Forwarded", "for=203.0.113.9;proto=https"}}, "198.51.100.7:4000", ""},
		{"untrusted, no header", "198.51.100.7:4000", nil, "198.51.100.7:4000", ""},

		{"trusted, X-Forwarded-For", "10.0.0.5:4000", hdr{{"X-Forwarded-For", "203.0.113.9"}, {"X-Forwarded-Proto", "https"}}, "203.0.113.9:0", "https"},
		{"trusted, Forwarded", "10.0.0.5:4000", hdr{{"Forwarded", `for=192.0.2.60;proto=https;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"`}}, "[2001:db8:cafe::17]:4711", ""},
		{"trusted, Forwarded with proto", "10.0.0.5:4000", hdr{{"Forwarded", `for="[2001:db8:cafe::17]:4711";proto=https`}}, "[2001:db8:cafe::17]:4711", "https"},
		{"trusted, Forwarded over two lines", "[::1]:4000", hdr{{"Forwarded", "for=6.6.6.6;proto=http"}, {"Forwarded", "for=203.0.113.9;proto=https, for=10.0.0.6"}}, "203.0.113.9:0", "https"},
		{"trusted, no header: the proxy's own request", "10.0.0.5:4000", nil, "10.0.0.5:4000", ""},
		{"trusted, X-Forwarded-Proto only", "10.0.0.5:4000", hdr{{"X-Forwarded-Proto", "https"}}, "10.0.0.5:4000", "https"},

		// Both: X-Forwarded-For, whatever Forwarded says, and the proto of
		// the same family.
		{"both: X-Forwarded-For wins", "10.0.0.5:4000", hdr{{"Forwarded", "for=6.6.6.6;proto=https"}, {"X-Forwarded-For", "203.0.113.9"}}, "203.0.113.9:0", ""},
		{"both, with X-Forwarded-Proto", "10.0.0.5:4000", hdr{{"X-Forwarded-For", "203.0.113.9"}, {"X-Forwarded-Proto", "http"}, {"Forwarded", "for=6.6.6.6;proto=https"}}, "203.0.113.9:0", "http"},
		{"both, X-Forwarded-For unreadable: not Forwarded either", "10.0.0.5:4000", hdr{{"X-Forwarded-For", "unknown"}, {"Forwarded", "for=203.0.113.9"}}, "10.0.0.5:4000", ""},
		{"both, X-Forwarded-For empty: still X-Forwarded-For", "10.0.0.5:4000", hdr{{"X-Forwarded-For", ""}, {"Forwarded", "for=203.0.113.9"}}, "10.0.0.5:4000", ""},
		{"Forwarded: X-Forwarded-Proto not taken", "10.0.0.5:4000", hdr{{"Forwarded", "for=203.0.113.9"}, {"X-Forwarded-Proto", "https"}}, "203.0.113.9:0", ""},
		{"Forwarded malformed: the peer", "10.0.0.5:4000", hdr{{"Forwarded", `for="203.0.113.9`}}, "10.0.0.5:4000", ""},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://id.example.com/", nil)
		r.RemoteAddr = c.peer
		for _, kv := range c.header {
			r.Header.Add(kv[0], kv[1])
		}
		got, f := tr.Client(r.RemoteAddr, r.Header)
		if got != c.want || f.Proto != c.proto {
			t.Errorf("%s: Client(%q, %q) = %q, %q; want %q, %q", c.name, c.peer, r.Header, got, f.Proto, c.want, c.proto)
		}
	}
	// Without trusted proxies, the peer and nothing said, whatever the
	// headers.
	var none clientip.Trusted
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "127.0.0.1:4000"
	r.Header.Set("Forwarded", "for=203.0.113.9;proto=https")
	r.Header.Set("X-Forwarded-Proto", "https")
	if got, f := none.Client(r.RemoteAddr, r.Header); got != r.RemoteAddr || f != (clientip.Forwarded{}) {
		t.Errorf("no trusted proxies: %q %+v", got, f)
	}
}

// TestBroad: the trusted_proxies entries the configuration warns of.
func TestBroad(t *testing.T) {
	for in, want := range map[string]bool{
		"0.0.0.0/0": true, "::/0": true, "128.0.0.0/1": true, "4.0.0.0/7": true, "::ffff:0.0.0.0/96": true,
		"2000::/3": true, "2a00::/12": true, "2a00::/15": true, "f800::/6": true, "fc00::/6": true, "fe00::/7": true,
		"10.0.0.0/8": false, "3.0.0.0/8": false, "192.168.0.0/16": false, "127.0.0.1": false, "100.64.0.0/10": false,
		"2a00::/16": false, "2001:db8::/32": false, "fc00::/7": false, "fd00::/8": false, "fe80::/10": false, "::1": false,
		"::ffff:10.0.0.0/104": false,
	} {
		p, err := clientip.ParsePrefix(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := clientip.Broad(p); got != want {
			t.Errorf("Broad(%s) = %v", in, got)
		}
	}
	// Not only as ParsePrefix returns them.
	if clientip.Broad(netip.Prefix{}) || !clientip.Broad(netip.MustParsePrefix("::ffff:0.0.0.0/100")) || clientip.Broad(netip.MustParsePrefix("::ffff:10.0.0.0/104")) {
		t.Error("Broad of an invalid or IPv4-mapped prefix")
	}
}

// FuzzForwarded: whatever a client writes in Forwarded, from an untrusted
// peer the peer is the client, and from a trusted one it never outweighs
// an element a trusted proxy appends, on its line or on a line of its own;
// any address returned is host:port.
func FuzzForwarded(f *testing.F) {
	for _, s := range []string{
		`for=192.0.2.60;proto=https;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"`,
		`for="`, `"`, `\`, `for="\`, `for=a;for=b`, ",,", "for=unknown", "for=_x", `for="[::1]:_p"`, "",
	} {
		f.Add(s)
	}
	tr := mustNew(f, "10.0.0.0/8")
	f.Fuzz(func(t *testing.T, s string) {
		got, _ := tr.FromForwarded("10.0.0.5:4000", []string{s})
		if _, err := netip.ParseAddrPort(got); err != nil {
			t.Errorf("%q: %q is not host:port", s, got)
		}
		if got, f := tr.FromForwarded("198.51.100.7:4000", []string{s}); got != "198.51.100.7:4000" || f.Proto != "" {
			t.Errorf("%q: untrusted peer: %q %q", s, got, f.Proto)
		}
		for _, lines := range [][]string{
			{s + `, for="[2001:db8::9]:443";proto=https`},
			{s, `for="[2001:db8::9]:443";proto=https`},
			{s + ",for=10.0.0.8", `for="[2001:db8::9]:443";proto=https, for=10.0.0.7`},
		} {
			if got, f := tr.FromForwarded("10.0.0.5:4000", lines); got != "[2001:db8::9]:443" || f.Proto != "https" {
				t.Errorf("%q: the proxy's element lost: %q %q", lines, got, f.Proto)
			}
		}
	})
}
