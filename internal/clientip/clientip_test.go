package clientip_test

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/writ-id/writ/internal/clientip"
)

func mustNew(t testing.TB, entries ...string) clientip.Trusted {
	t.Helper()
	tr, err := clientip.New(entries)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// trustedForTables is the trusted_proxies of the table tests.
var trustedForTables = []string{"10.0.0.0/8", "127.0.0.1", "2001:db8:aaaa::/48", "::1"}

// xffCases are TestRemoteAddr's, which TestForwardedReadsAsXFF also reads
// as Forwarded elements.
var xffCases = []struct {
	name string
	peer string
	xff  []string // header lines, as received
	want string
}{
	// An untrusted peer: X-Forwarded-For is the client's to write.
	{"untrusted peer, spoofed entry", "198.51.100.7:4000", []string{"10.1.2.3"}, "198.51.100.7:4000"},
	{"untrusted peer, claims a client", "198.51.100.7:4000", []string{"203.0.113.9, 10.0.0.1"}, "198.51.100.7:4000"},
	{"untrusted peer next to a trusted range", "11.0.0.1:4000", []string{"203.0.113.9"}, "11.0.0.1:4000"},
	{"untrusted IPv6 peer", "[2001:db8:bbbb::1]:4000", []string{"203.0.113.9"}, "[2001:db8:bbbb::1]:4000"},
	{"untrusted peer, no header", "198.51.100.7:4000", nil, "198.51.100.7:4000"},

	// A trusted peer.
	{"one proxy", "10.0.0.5:4000", []string{"203.0.113.9"}, "203.0.113.9:0"},
	{"no header: the proxy's own request", "10.0.0.5:4000", nil, "10.0.0.5:4000"},
	{"spoofed entries left of the client are skipped", "10.0.0.5:4000", []string{"1.1.1.1, 10.9.9.9, 203.0.113.9"}, "203.0.113.9:0"},
	{"a spoofed trusted address left of the client", "10.0.0.5:4000", []string{"10.0.0.7, 203.0.113.9"}, "203.0.113.9:0"},
	{"two trusted hops", "10.0.0.5:4000", []string{"203.0.113.9, 10.0.0.6"}, "203.0.113.9:0"},
	{"three trusted hops, spoofed left", "127.0.0.1:4000", []string{"6.6.6.6,203.0.113.9 ,10.0.0.6,  10.0.0.7"}, "203.0.113.9:0"},
	{"whitespace and tabs", "10.0.0.5:4000", []string{" 1.1.1.1 ,\t203.0.113.9\t"}, "203.0.113.9:0"},
	{"IPv4-mapped peer", "[::ffff:10.0.0.5]:4000", []string{"203.0.113.9"}, "203.0.113.9:0"},

	// Several header lines are one list, in order.
	{"lines in order", "10.0.0.5:4000", []string{"1.1.1.1", "203.0.113.9", "10.0.0.6"}, "203.0.113.9:0"},
	{"lines with several entries", "10.0.0.5:4000", []string{"1.1.1.1, 2.2.2.2", "10.0.0.6, 10.0.0.7"}, "2.2.2.2:0"},
	{"the last line is the nearest proxy's", "10.0.0.5:4000", []string{"203.0.113.9", "198.51.100.1"}, "198.51.100.1:0"},

	// IPv6.
	{"IPv6 client", "10.0.0.5:4000", []string{"2001:db8:cccc::42"}, "[2001:db8:cccc::42]:0"},
	{"IPv6 peer and hops", "[2001:db8:aaaa::1]:4000", []string{"2001:db8:cccc::42, 2001:db8:aaaa::2"}, "[2001:db8:cccc::42]:0"},
	{"IPv6 loopback peer", "[::1]:4000", []string{"198.51.100.1"}, "198.51.100.1:0"},
	{"IPv6 client in brackets", "10.0.0.5:4000", []string{"[2001:db8:cccc::42]"}, "[2001:db8:cccc::42]:0"},
	{"IPv6 client with port", "10.0.0.5:4000", []string{"[2001:db8:cccc::42]:443"}, "[2001:db8:cccc::42]:443"},
	{"IPv4 client with port", "10.0.0.5:4000", []string{"203.0.113.9:5678"}, "203.0.113.9:5678"},
	{"IPv4-mapped client", "10.0.0.5:4000", []string{"::ffff:203.0.113.9"}, "203.0.113.9:0"},
	{"IPv4-mapped trusted hop is skipped", "10.0.0.5:4000", []string{"203.0.113.9, ::ffff:10.0.0.6"}, "203.0.113.9:0"},

	// Every entry a trusted proxy: the leftmost.
	{"all trusted", "10.0.0.5:4000", []string{"10.0.0.8, 10.0.0.7, 10.0.0.6"}, "10.0.0.8:0"},
	{"all trusted over lines", "10.0.0.5:4000", []string{"127.0.0.1", "::1, 10.0.0.6"}, "127.0.0.1:0"},
	{"one trusted entry", "127.0.0.1:4000", []string{"127.0.0.1"}, "127.0.0.1:0"},

	// Garbage reached: the peer.
	{"garbage", "10.0.0.5:4000", []string{"not an address"}, "10.0.0.5:4000"},
	{"unknown", "10.0.0.5:4000", []string{"unknown"}, "10.0.0.5:4000"},
	{"host name", "10.0.0.5:4000", []string{"client.example.com"}, "10.0.0.5:4000"},
	{"empty line", "10.0.0.5:4000", []string{""}, "10.0.0.5:4000"},
	{"empty entry right of the client", "10.0.0.5:4000", []string{"203.0.113.9, "}, "10.0.0.5:4000"},
	{"garbage behind a trusted hop", "10.0.0.5:4000", []string{"203.0.113.9, bogus, 10.0.0.6"}, "10.0.0.5:4000"},
	{"CIDR", "10.0.0.5:4000", []string{"203.0.113.0/24"}, "10.0.0.5:4000"},
	{"zone", "10.0.0.5:4000", []string{"fe80::1%eth0"}, "10.0.0.5:4000"},
	{"bad port", "10.0.0.5:4000", []string{"203.0.113.9:99999"}, "10.0.0.5:4000"},
	{"unbracketed IPv6 with port", "10.0.0.5:4000", []string{"2001:db8::1:443:x"}, "10.0.0.5:4000"},
	{"bracketed IPv4", "10.0.0.5:4000", []string{"[203.0.113.9]"}, "10.0.0.5:4000"},
	{"octal-looking IPv4", "10.0.0.5:4000", []string{"010.0.0.1"}, "10.0.0.5:4000"},
	{"garbage left of the client is never read", "10.0.0.5:4000", []string{"<script>, , 203.0.113.9"}, "203.0.113.9:0"},
	{"a peer that is not host:port", "@", []string{"203.0.113.9"}, "@"},
}

// TestRemoteAddr: the client is the rightmost X-Forwarded-For entry that
// is not a trusted proxy, and only a trusted peer is believed.
func TestRemoteAddr(t *testing.T) {
	tr := mustNew(t, trustedForTables...)
	for _, c := range xffCases {
		if got := tr.RemoteAddr(c.peer, c.xff); got != c.want {
			t.Errorf("%s: RemoteAddr(%q, %q) = %q, want %q", c.name, c.peer, c.xff, got, c.want)
		}
	}
}

// TestNoTrustedProxies: without trusted proxies (the default), the peer
// is the client, whatever the header says.
func TestNoTrustedProxies(t *testing.T) {
	var zero clientip.Trusted
	none := mustNew(t)
	for _, tr := range []clientip.Trusted{zero, none} {
		if !tr.Empty() {
			t.Error("not empty")
		}
		for _, peer := range []string{"127.0.0.1:4000", "[::1]:4000", "10.0.0.5:4000"} {
			if got := tr.RemoteAddr(peer, []string{"203.0.113.9", "127.0.0.1"}); got != peer {
				t.Errorf("%s: %s", peer, got)
			}
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":           "127.0.0.1/32",
		"10.0.0.0/8":          "10.0.0.0/8",
		"0.0.0.0/0":           "0.0.0.0/0",
		"::1":                 "::1/128",
		"2001:db8::/32":       "2001:db8::/32",
		"::ffff:10.0.0.1":     "10.0.0.1/32",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
		"fd00::/8":            "fd00::/8",
	} {
		p, err := clientip.ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("%q: %v %v, want %s", in, p, err, want)
		}
	}
	for in, want := range map[string]string{
		"":               `not an IP address or CIDR prefix: ""`,
		"localhost":      `not an IP address or CIDR prefix: "localhost"`,
		"10.0.0.0/33":    `not an IP address or CIDR prefix: "10.0.0.0/33"`,
		"10.0.0/8":       `not an IP address or CIDR prefix: "10.0.0/8"`,
		"10.0.0.1:80":    `not an IP address or CIDR prefix: "10.0.0.1:80"`,
		" 10.0.0.1":      `not an IP address or CIDR prefix: " 10.0.0.1"`,
		"10.0.0.1/8":     `"10.0.0.1/8" has bits set past its prefix length (did you mean 10.0.0.0/8?)`,
		"2001:db8::1/32": `"2001:db8::1/32" has bits set past its prefix length (did you mean 2001:db8::/32?)`,
		"fe80::1%eth0":   `"fe80::1%eth0" has an IPv6 zone: write the address without it`,
		"fe80::/10%eth0": `not an IP address or CIDR prefix: "fe80::/10%eth0"`,
	} {
		if _, err := clientip.ParsePrefix(in); err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %s", in, err, want)
		}
	}
	if _, err := clientip.New([]string{"10.0.0.0/8", "x", "::1", "10.0.0.1/8"}); err == nil ||
		!strings.Contains(err.Error(), `clientip: trusted_proxies[1]: not an IP address or CIDR prefix: "x"`) ||
		!strings.Contains(err.Error(), `clientip: trusted_proxies[3]: "10.0.0.1/8" has bits set`) {
		t.Errorf("New: %v", err)
	}
}

func TestContains(t *testing.T) {
	tr := mustNew(t, "10.0.0.0/8", "::1")
	for addr, want := range map[string]bool{
		"10.255.0.1": true, "11.0.0.1": false, "::ffff:10.0.0.1": true, "::1": true, "::2": false,
		"::1%lo": true, "fe80::1%eth0": false, "127.0.0.1": false,
	} {
		if got := tr.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %v", addr, got)
		}
	}
}

// TestImportsStayLeaf: internal/config imports this package, which must
// stay a parser (no net/http, no other writ package).
func TestImportsStayLeaf(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "net/http" || dep == "net" || (strings.HasPrefix(dep, "github.com/writ-id/writ/") && dep != "github.com/writ-id/writ/internal/clientip") {
			t.Errorf("internal/clientip depends on %s", dep)
		}
	}
}

func TestBucket(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
		"fe80::1%eth0":         "fe80::/64",
		"":                     "",
		"not an address":       "not an address",
	} {
		if got := clientip.Bucket(in); got != want {
			t.Errorf("Bucket(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseForwarded(t *testing.T) {
	for _, c := range []struct {
		proto []string
		want  string
	}{
		{[]string{"https"}, "https"},
		{[]string{" HTTP "}, "http"},
		{nil, ""},
		{[]string{"https, http"}, ""},
		{[]string{"https", "http"}, ""},
		{[]string{"ftp"}, ""},
		{[]string{"javascript"}, ""},
	} {
		if got := clientip.ParseForwarded(c.proto); got.Proto != c.want {
			t.Errorf("ParseForwarded(%q) = %+v, want %q", c.proto, got, c.want)
		}
	}
}
