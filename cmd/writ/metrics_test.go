package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	ci "github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"

	"github.com/writ-id/writ/internal/apptest"
)

// sdkOperations lists the operations of an AWS SDK client: its methods
// taking a context, an input and options.
func sdkOperations(client any) []string {
	var ops []string
	typ := reflect.TypeOf(client)
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		if m.Type.NumIn() == 4 && strings.HasSuffix(m.Type.In(2).String(), m.Name+"Input") {
			ops = append(ops, m.Name)
		}
	}
	return ops
}

// operationLabels returns, per component, every operation label of the
// request counter and duration histogram, with how many requests the
// counter counts under it.
func operationLabels(t *testing.T, opsURL string) map[string]map[string]float64 {
	t.Helper()
	fams := apptest.ScrapeMetrics(t, opsURL)
	out := map[string]map[string]float64{}
	for _, name := range []string{"writ_http_requests_total", "writ_http_request_duration_seconds"} {
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s", name)
		}
		for _, m := range f.Metric {
			var comp, op string
			for _, l := range m.Label {
				switch l.GetName() {
				case "component":
					comp = l.GetValue()
				case "operation":
					op = l.GetValue()
				}
			}
			if out[comp] == nil {
				out[comp] = map[string]float64{}
			}
			out[comp][op] += m.GetCounter().GetValue() // 0 for the histogram's series

		}
	}
	return out
}

// The operation label of /metrics takes only operations the server
// answers: random X-Amz-Targets from an unauthenticated caller count as
// "unknown" instead of creating series, and every operation the SDK can
// call that the server dispatches has its own label.
func TestMetricsOperationLabels(t *testing.T) {
	if testing.Short() {
		t.Skip("starts writ serve")
	}
	s := startServe(t, testConfig(t, t.TempDir()))
	post := func(url, target string) (code string) {
		req, _ := http.NewRequest("POST", url+"/", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", target)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e struct {
			Type string `json:"__type"`
		}
		json.Unmarshal(b, &e)
		return e.Type
	}
	services := []struct {
		component, prefix string
		ops               []string
	}{
		{"idp", "AWSCognitoIdentityProviderService", sdkOperations(&cip.Client{})},
		{"identity", "AWSCognitoIdentityService", sdkOperations(&ci.Client{})},
	}
	answered := map[string]map[string]bool{}
	for _, svc := range services {
		if len(svc.ops) < 10 {
			t.Fatalf("%s: found only %d SDK operations", svc.component, len(svc.ops))
		}
		answered[svc.component] = map[string]bool{}
		for _, op := range svc.ops {
			if code := post(s.url(svc.component), svc.prefix+"."+op); !strings.Contains(code, "UnknownOperationException") {
				answered[svc.component][op] = true
			}
		}
		if len(answered[svc.component]) < 3 {
			t.Fatalf("%s answers only %v", svc.component, answered[svc.component])
		}
	}
	random := map[string][]string{}
	for _, svc := range services {
		for range 20 {
			op := "Op" + strings.ToUpper(rand.Text()[:12])
			random[svc.component] = append(random[svc.component], op)
			post(s.url(svc.component), svc.prefix+"."+op)
			post(s.url(svc.component), "Random"+rand.Text()[:8]+"."+op)
			if code := post(s.url(svc.component), "OtherService.InitiateAuth"); !strings.Contains(code, "UnknownOperationException") {
				t.Fatalf("%s: another service's target answered %q", svc.component, code)
			}
		}
	}
	labels := operationLabels(t, s.url("ops"))
	for _, svc := range services {
		got := labels[svc.component]
		for _, op := range svc.ops {
			_, labelled := got[op]
			if answered[svc.component][op] && got[op] < 1 {
				t.Errorf("%s answers %s, but no request counts under its label", svc.component, op)
			}
			if !answered[svc.component][op] && labelled {
				t.Errorf("%s does not answer %s, but it has a series", svc.component, op)
			}
		}
		for _, op := range random[svc.component] {
			if _, ok := got[op]; ok {
				t.Errorf("%s: a random target made the series %q", svc.component, op)
			}
		}
		// Unanswered SDK operations, 20 random targets under the service's
		// prefix, 20 under another, 20 of another service's.
		if want := float64(len(svc.ops) - len(answered[svc.component]) + 60); got["unknown"] != want {
			t.Errorf("%s: operation=\"unknown\" counts %v requests, want %v", svc.component, got["unknown"], want)
		}
		var buf bytes.Buffer
		for op := range got {
			buf.WriteString(op + " ")
		}
		t.Logf("%s labels: %s", svc.component, buf.String())
	}
}
