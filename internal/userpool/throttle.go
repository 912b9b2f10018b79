package userpool

import (
	"context"
	"errors"
	"time"

	"github.com/writ-id/writ/internal/clientip"
)

// Per-source limits on the code operations, beside the per-user limits
// (maxCodeSends, maxCodeGuesses). The per-user limits stop one account's
// codes from being requested or guessed without end, but not one address
// spraying ForgotPassword or ResendConfirmationCode over many usernames
// (mail bombing, and spending every user's maxCodeSends) or guessing
// codes across many users. These limits count per pool and source address
// in a fixed window, in the store's counters as the sign-in throttle
// (login-src, Service.sourceLimit) does, and refuse with the same
// TooManyRequestsException ("too many requests for a given operation" in
// Cognito's API reference; LimitExceededException stays the per-user
// "Attempt limit exceeded").
//
// Every request that reaches the point where it would touch a user's
// codes or counters counts, whatever its outcome and whether or not the
// user exists, so the limit tells nothing about accounts; a request over
// the limit is refused there, before any of them, sending nothing.
// Requests without a source address (internal callers) and the admin
// operations, whose source is the administrator's server, are not limited.
//
// The defaults match the sign-in throttle (100 per source in a 15-minute
// window by default): 400 an hour is far more than a NAT'd office or campus
// asks for legitimately (a few resets and sign-ups an hour per person,
// each capped per user anyway), while one address can no longer mail
// more than that, nor guess more than 400 six-digit codes an hour across
// all users (about 1 in 2,500 chance of hitting any code per hour).
const (
	// sourceCodeWindow is the window of both per-source code limits.
	sourceCodeWindow = 15 * time.Minute
	// defaultCodeSendSourceLimit is Service.codeSendSourceLimit: requests
	// that mail a code (SignUp with an email address,
	// ResendConfirmationCode, ForgotPassword,
	// GetUserAttributeVerificationCode) per source and window.
	defaultCodeSendSourceLimit = 100
	// defaultCodeCheckSourceLimit is Service.codeCheckSourceLimit: codes
	// given (ConfirmSignUp, ConfirmForgotPassword, VerifyUserAttribute)
	// that failed, per source and window, as the sign-in throttle counts
	// failures: an office behind one address confirms as many right codes
	// as it likes.
	defaultCodeCheckSourceLimit = 100
)

// Kinds of per-source code limits (the first part of their counter key).
const (
	srcCodeSend  = "code-send-src"
	srcCodeCheck = "code-check-src"
)

// sourceKey names the counter of a per-source limit of kind for src:
// per pool, and per client (clientip.Bucket: an IPv6 client's /64).
func (p *Pool) sourceKey(kind, src string) string {
	return kind + "/" + p.cfg.ID + "/" + clientip.Bucket(src)
}

// throttleCodeSend counts a request for a code from src toward the
// per-source limit on code requests and refuses it past the limit.
func (p *Pool) throttleCodeSend(ctx context.Context, src string) error {
	return p.throttleSource(ctx, srcCodeSend, src, p.svc.codeSendSourceLimit,
		"Too many code requests from this address; try again later.")
}

// throttleCodeCheck refuses a code given from src once the per-source
// limit of failed ones is reached; else it returns failed, for the
// attempt to call with its outcome: a failure (not the server's own)
// counts toward the limit.
func (p *Pool) throttleCodeCheck(ctx context.Context, src string) (failed func(error), err error) {
	if src == "" {
		return func(error) {}, nil
	}
	key := p.sourceKey(srcCodeCheck, src)
	n, err := p.st().Count(ctx, key, p.now())
	if err != nil {
		return nil, internal(err)
	}
	if n >= p.svc.codeCheckSourceLimit {
		return nil, &Error{Code: CodeTooManyRequests, Message: "Too many failed code attempts from this address; try again later.",
			Cause: errors.New(srcCodeCheck + " limit reached for " + src)}
	}
	return func(err error) {
		var ue *Error
		if err == nil || errors.As(err, &ue) && ue.Code == CodeInternal {
			return
		}
		if _, err := p.st().Incr(ctx, key, sourceCodeWindow, p.now()); err != nil {
			p.svc.deps.Log.Warn("userpool: cannot count a failed code attempt", "err", err)
		}
	}, nil
}

// throttleSource counts a request from src on the counter kind and
// refuses it with TooManyRequestsException once more than limit were
// counted within sourceCodeWindow. The counter is incremented before the
// check, so concurrent requests cannot overshoot the limit. A request
// without a source ("") is not limited.
func (p *Pool) throttleSource(ctx context.Context, kind, src string, limit int, msg string) error {
	if src == "" {
		return nil
	}
	n, err := p.st().Incr(ctx, p.sourceKey(kind, src), sourceCodeWindow, p.now())
	if err != nil {
		return internal(err)
	}
	if n > limit {
		return &Error{Code: CodeTooManyRequests, Message: msg, Cause: errors.New(kind + " limit reached for " + src)}
	}
	return nil
}
