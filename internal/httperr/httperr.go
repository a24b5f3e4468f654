// Package httperr is the error every layer of the edge returns when a
// request does not get its normal answer: the status, a stable public code
// and message for the JSON body, and the internal cause only the log sees.
// internal/edge renders it; internal/stream returns it.
package httperr

// Error is a refusal or failure with its public face and private cause.
type Error struct {
	Status  int
	Code    string // stable snake_case, e.g. token_expired
	Message string // for the client; never a token, secret or signature
	Err     error  // the cause, for logs only
}

// New returns an Error.
func New(status int, code, msg string, cause error) *Error {
	return &Error{Status: status, Code: code, Message: msg, Err: cause}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }
