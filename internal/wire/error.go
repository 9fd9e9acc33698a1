package wire

import (
	"errors"
	"fmt"
)

// Code classifies an error so that it survives the trip over the network
// and can be turned into an errno at the FUSE edge.
type Code uint16

const (
	CodeOK Code = iota
	CodeInternal
	CodeMalformed   // the peer sent something that does not decode
	CodeUnknown     // unknown method
	CodeNotFound    // ENOENT
	CodeExists      // EEXIST
	CodeNotEmpty    // ENOTEMPTY
	CodeNotDir      // ENOTDIR
	CodeIsDir       // EISDIR
	CodeInvalid     // EINVAL
	CodeNoSpace     // ENOSPC
	CodeNameTooLong // ENAMETOOLONG
	CodePerm        // EPERM
	CodeIO          // EIO: data could not be read or written
	CodeUnavailable // not enough servers to do it now
	CodeCorrupt     // stored data failed verification
	CodeNoData      // ENODATA
	CodeRange       // ERANGE
	CodeTooBig      // E2BIG / EFBIG
	CodeMlink       // EMLINK
	CodeNotSup      // EOPNOTSUPP
	CodeDeadlock    // EDEADLK: waiting for the lock would wait forever
	codeEnd
)

var codeNames = [...]string{
	"ok", "internal error", "malformed message", "unknown method", "not found",
	"exists", "directory not empty", "not a directory", "is a directory",
	"invalid argument", "no space", "name too long", "not permitted",
	"i/o error", "unavailable", "corrupt", "no data", "out of range",
	"too big", "too many links", "not supported", "deadlock",
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// Error is an error with a code, as carried in a response.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Msg
}

// Is makes errors.Is(err, wire.ErrNotFound) match any error of that code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Code == e.Code
}

// AsError returns err as the *Error a peer is sent: err itself (or the
// *Error it wraps), else an internal error carrying its text.
func AsError(err error) *Error {
	var we *Error
	if !errors.As(err, &we) {
		we = &Error{Code: CodeInternal, Msg: err.Error()}
	}
	return we
}

// Errorf makes an *Error with a formatted message.
func Errorf(c Code, format string, args ...any) error {
	return &Error{Code: c, Msg: fmt.Sprintf(format, args...)}
}

// Sentinels for errors.Is; each matches every error of its code.
var (
	ErrNotFound    = &Error{Code: CodeNotFound}
	ErrExists      = &Error{Code: CodeExists}
	ErrNotEmpty    = &Error{Code: CodeNotEmpty}
	ErrNotDir      = &Error{Code: CodeNotDir}
	ErrIsDir       = &Error{Code: CodeIsDir}
	ErrInvalid     = &Error{Code: CodeInvalid}
	ErrNoSpace     = &Error{Code: CodeNoSpace}
	ErrNameTooLong = &Error{Code: CodeNameTooLong}
	ErrPerm        = &Error{Code: CodePerm}
	ErrIO          = &Error{Code: CodeIO}
	ErrUnavailable = &Error{Code: CodeUnavailable}
	ErrCorrupt     = &Error{Code: CodeCorrupt}
	ErrMalformed   = &Error{Code: CodeMalformed}
)

// ErrorMessage is the body of a failed response.
type ErrorMessage struct{ Err Error }

func (m *ErrorMessage) Append(b []byte) []byte {
	b = AppendU16(b, uint16(m.Err.Code))
	return AppendString(b, m.Err.Msg)
}

func (m *ErrorMessage) Decode(r *Reader) {
	m.Err.Code = Code(r.U16())
	m.Err.Msg = r.String()
	if m.Err.Code == CodeOK || m.Err.Code >= codeEnd {
		m.Err.Code = CodeInternal
	}
}
