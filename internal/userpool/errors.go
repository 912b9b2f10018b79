package userpool

import "fmt"

// Error codes, named as Cognito names its exceptions.
const (
	CodeNotAuthorized         = "NotAuthorizedException"
	CodeUnauthorized          = "UnauthorizedException" // RevokeToken's, for a client that may not revoke
	CodeUserNotConfirmed      = "UserNotConfirmedException"
	CodeUsernameExists        = "UsernameExistsException"
	CodeInvalidPassword       = "InvalidPasswordException"
	CodeInvalidParameter      = "InvalidParameterException"
	CodeCodeMismatch          = "CodeMismatchException"
	CodeExpiredCode           = "ExpiredCodeException"
	CodeResourceNotFound      = "ResourceNotFoundException"
	CodeEnableSoftwareToken   = "EnableSoftwareTokenMFAException"
	CodeSoftwareTokenNotFound = "SoftwareTokenMFANotFoundException"
	CodeTooManyRequests       = "TooManyRequestsException"
	CodeLimitExceeded         = "LimitExceededException"
	CodeTooManyFailedAttempts = "TooManyFailedAttemptsException"
	CodeUnsupportedTokenType  = "UnsupportedTokenTypeException"
	CodeUnsupportedUserState  = "UnsupportedUserStateException"
	CodeUserNotFound          = "UserNotFoundException"
	CodeInternal              = "InternalErrorException"
)

// Error is an error whose Code and Message are safe to show the caller;
// Cause (never shown) is for logs and the audit trail.
type Error struct {
	Code    string
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("userpool: %s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return fmt.Sprintf("userpool: %s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

func newErr(code, msg string) *Error { return &Error{Code: code, Message: msg} }

func errBadCredentials() *Error {
	return newErr(CodeNotAuthorized, "Incorrect username or password.")
}

func errBadSession() *Error {
	return newErr(CodeNotAuthorized, "Invalid session for the user, session is expired.")
}

func internal(err error) *Error {
	return &Error{Code: CodeInternal, Message: "Internal error.", Cause: err}
}
