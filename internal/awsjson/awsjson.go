// Package awsjson is the AWS JSON 1.1 protocol: POST / with X-Amz-Target,
// JSON bodies, errors as {"__type","message"} with a matching
// X-Amzn-ErrorType header, and an x-amzn-RequestId on every response. The
// Cognito IdP and Cognito Identity adapters are built on it. It also holds
// what writ's HTTP APIs share: the caller's address, request id and trace,
// and the CORS policy of the endpoints browser apps call (cors.go).
package awsjson

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/writ-id/writ/internal/audit"
)

// MaxBody bounds a request body.
const MaxBody = 256 << 10

// postOnly is the one method of the protocol.
var postOnly = []string{http.MethodPost}

// Error is an AWS JSON error: Code becomes __type, Message the message.
type Error struct {
	Status  int
	Code    string
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return "awsjson: " + e.Code + ": " + e.Message + ": " + e.Cause.Error()
	}
	return "awsjson: " + e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns a 400 error with code and message.
func Errorf(code, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: msg}
}

// Op handles one operation: it decodes body into its input and returns the
// output to encode.
type Op func(ctx context.Context, r *http.Request, body []byte) (any, error)

// Mapper turns a domain error into an *Error (return nil when it cannot).
type Mapper func(err error) *Error

// Service serves one AWS JSON service.
type Service struct {
	// Prefix is the X-Amz-Target service prefix, e.g.
	// "AWSCognitoIdentityProviderService".
	Prefix string
	Ops    map[string]Op
	Map    Mapper
	Log    *slog.Logger
}

// ServeHTTP dispatches by X-Amz-Target, behind CORS (browser apps call
// these APIs: the AWS SDK for JavaScript, Amplify); it answers OPTIONS.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if serveCORS(w, r, postOnly, true) {
		return
	}
	reqID := RequestID(r)
	ctx := audit.WithRequest(r.Context(), audit.RequestInfo{ID: reqID, SourceIP: SourceIP(r),
		TraceID: TraceID(r.Header.Get("traceparent"))})
	w.Header().Set("x-amzn-RequestId", reqID)
	out, err := s.serve(ctx, r)
	if err != nil {
		s.writeError(w, r, err, reqID)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		s.writeError(w, r, err, reqID)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Write(b)
}

func (s *Service) serve(ctx context.Context, r *http.Request) (any, error) {
	if r.Method != http.MethodPost {
		return nil, &Error{Status: http.StatusMethodNotAllowed, Code: "UnknownOperationException", Message: "Only POST is supported"}
	}
	target := r.Header.Get("X-Amz-Target")
	prefix, opName, ok := strings.Cut(target, ".")
	op := s.Ops[opName]
	if !ok || prefix != s.Prefix || op == nil {
		return nil, Errorf("UnknownOperationException", "Unknown operation "+truncate(target, 100))
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: "RequestEntityTooLargeException", Message: "Request body is too large"}
		}
		return nil, Errorf("SerializationException", "Cannot read the request body")
	}
	// Ops that verify a signature hash the body again.
	r.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) {
		return nil, Errorf("SerializationException", "The request body is not valid JSON")
	}
	return op(ctx, r, body)
}

// Decode unmarshals body into v, reporting a SerializationException.
func Decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Errorf("SerializationException", "Wrong type for field "+te.Field)
		}
		return Errorf("SerializationException", "The request body could not be decoded")
	}
	return nil
}

func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error, reqID string) {
	var ae *Error
	if !errors.As(err, &ae) {
		if s.Map != nil {
			ae = s.Map(err)
		}
		if ae == nil {
			ae = &Error{Status: http.StatusInternalServerError, Code: "InternalErrorException", Message: "Internal error", Cause: err}
		}
	}
	if ae.Status >= 500 {
		log := s.Log
		if log == nil {
			log = slog.Default()
		}
		log.Error("internal error", "request_id", reqID, "target", r.Header.Get("X-Amz-Target"), "err", err)
		ae.Message = "Internal error (request id " + reqID + ")"
	}
	b, _ := json.Marshal(map[string]string{"__type": ae.Code, "message": ae.Message})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", ae.Code)
	w.WriteHeader(ae.Status)
	w.Write(b)
}

// SourceIP returns the caller's address: the host of r.RemoteAddr, which is
// the TCP peer, or the client a trusted proxy forwarded for when the
// listener has trusted_proxies (internal/app sets RemoteAddr to it).
func SourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// TraceID extracts the trace id of a W3C traceparent header ("" if invalid).
func TraceID(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		return ""
	}
	return parts[1]
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// RequestID returns the request id a caller passed on (X-Request-Id, as the
// gateway and the writ SDK send it, or X-Amzn-RequestId), or a new one.
func RequestID(r *http.Request) string {
	for _, h := range []string{"X-Request-Id", "X-Amzn-RequestId"} {
		if v := r.Header.Get(h); v != "" && len(v) <= 128 && !strings.ContainsAny(v, "\r\n") {
			return v
		}
	}
	return audit.NewRequestID()
}
