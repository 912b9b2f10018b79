// Command fn is a test function for the gateway's Lambda runtime: it echoes
// its event, and misbehaves on request (sleep past the timeout, crash,
// answer with a bare value, a binary body, a status that is none or
// hop-by-hop headers), and shows its environment.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var req events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, err
	}
	switch {
	case strings.HasSuffix(req.RawPath, "/sleep"):
		time.Sleep(10 * time.Second)
	case strings.HasSuffix(req.RawPath, "/nap"):
		time.Sleep(500 * time.Millisecond)
	case strings.HasSuffix(req.RawPath, "/crash"):
		os.Exit(3)
	case strings.HasSuffix(req.RawPath, "/fail"):
		return nil, errors.New("deliberate failure")
	case strings.HasSuffix(req.RawPath, "/bare"):
		return map[string]any{"bare": true, "pid": os.Getpid()}, nil
	case strings.HasSuffix(req.RawPath, "/env"):
		return map[string]any{"env": os.Environ()}, nil
	case strings.HasSuffix(req.RawPath, "/badstatus"):
		return events.APIGatewayV2HTTPResponse{StatusCode: 42, Body: "x"}, nil
	case strings.HasSuffix(req.RawPath, "/hop"):
		return events.APIGatewayV2HTTPResponse{StatusCode: 202, Body: "fn body", Headers: map[string]string{
			"Connection": "close, X-Foo", "X-Foo": "secret", "X-Kept": "yes", "Keep-Alive": "timeout=5", "Proxy-Connection": "keep-alive",
			"Proxy-Authenticate": `Basic realm="fn"`, "Upgrade": "h2c", "TE": "trailers", "Trailer": "X-Sum", "Transfer-Encoding": "gzip"},
			MultiValueHeaders: map[string][]string{"connection": {"X-Bar"}, "X-Bar": {"secret too"}}}, nil
	case strings.HasSuffix(req.RawPath, "/binary"):
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Body: base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255}), IsBase64Encoded: true,
			Headers: map[string]string{"Content-Type": "application/octet-stream"}}, nil
	}
	b, _ := json.Marshal(map[string]any{"event": req, "pid": os.Getpid(), "trace": os.Getenv("_X_AMZN_TRACE_ID")})
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json", "X-Fn": "yes", "X-Request-Id": "fn-chosen"}, Body: string(b)}, nil
}

func main() { lambda.Start(handle) }
