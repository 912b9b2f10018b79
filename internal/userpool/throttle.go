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
	lim := p.sourceFailures(srcCodeCheck, src, p.svc.codeCheckSourceLimit, sourceCodeWindow,
		"Too many failed code attempts from this address; try again later.")
	if err := lim.check(ctx); err != nil {
		return nil, err
	}
	return func(err error) {
		var ue *Error
		if err == nil || errors.As(err, &ue) && ue.Code == CodeInternal {
			return
		}
		if err := lim.fail(ctx); err != nil {
			p.svc.deps.Log.Warn("userpool: cannot count a failed code attempt", "err", err)
		}
	}, nil
}

// failureLimit is a per-source limit on failures (failed sign-ins, wrong
// codes): requests from the source are refused once limit failures were
// counted within window. Only failures count, so one address (an office
// behind NAT) succeeds as often as it likes. The zero of *failureLimit
// (nil) limits nothing.
type failureLimit struct {
	p      *Pool
	key    string
	limit  int
	window time.Duration
	msg    string
}

// sourceFailures returns the limit on failures of kind from src; nil when
// src is "" (an internal caller, not limited).
func (p *Pool) sourceFailures(kind, src string, limit int, window time.Duration, msg string) *failureLimit {
	if src == "" {
		return nil
	}
	return &failureLimit{p: p, key: p.sourceKey(kind, src), limit: limit, window: window, msg: msg}
}

// check refuses with TooManyRequestsException once the limit is reached.
func (l *failureLimit) check(ctx context.Context) error {
	if l == nil {
		return nil
	}
	n, err := l.p.st().Count(ctx, l.key, l.p.now())
	if err != nil {
		return internal(err)
	}
	if n >= l.limit {
		return &Error{Code: CodeTooManyRequests, Message: l.msg, Cause: errors.New("limit reached: " + l.key)}
	}
	return nil
}

// fail counts one failure.
func (l *failureLimit) fail(ctx context.Context) error {
	if l == nil {
		return nil
	}
	if _, err := l.p.st().Incr(ctx, l.key, l.window, l.p.now()); err != nil {
		return internal(err)
	}
	return nil
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
