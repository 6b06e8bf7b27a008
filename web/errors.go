package web

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/validation"
)

// Problem is an RFC 9457 problem document. Code is the stable, machine-readable
// error code partners branch on; Title and Detail are for people.
type Problem struct {
	Type      string                  `json:"type"`
	Title     string                  `json:"title"`
	Status    int                     `json:"status"`
	Code      string                  `json:"code"`
	Detail    string                  `json:"detail,omitempty"`
	Instance  string                  `json:"instance,omitempty"`
	RequestID string                  `json:"request_id,omitempty"`
	Errors    []validation.FieldError `json:"errors,omitempty"`
}

// errorKind is one row of the domain-error table.
type errorKind struct {
	err    error
	status int
	code   string
	title  string
}

// domainErrors is the one place where domain errors become HTTP answers.
// Matching uses errors.Is, never the error text. Add a row when a domain
// package grows a sentinel that a client must be able to tell apart.
var domainErrors = []errorKind{
	{errNotFound, http.StatusNotFound, "not_found", "Not found"},
	{errMethodNotAllowed, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed"},
	{errBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large"},
	{errUnavailable, http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
}

var (
	errNotFound         = errors.New("not found")
	errMethodNotAllowed = errors.New("method not allowed")
	errBodyTooLarge     = errors.New("request body too large")
	errUnavailable      = errors.New("a backing service is unavailable")
)

// problemFor maps err to a problem document. Unknown errors become a 500 that
// says nothing about internals; the caller logs the real error.
func problemFor(err error) (Problem, bool) {
	var ve *validation.Error
	if errors.As(err, &ve) {
		return Problem{Status: http.StatusBadRequest, Code: "invalid_request",
			Title: "The request has invalid fields", Errors: ve.Fields}, true
	}
	for _, k := range domainErrors {
		if errors.Is(err, k.err) {
			return Problem{Status: k.status, Code: k.code, Title: k.title, Detail: detailOf(err, k.err)}, true
		}
	}
	return Problem{Status: http.StatusInternalServerError, Code: "internal_error",
		Title: "Internal error", Detail: "The error was logged; quote the request id when you report it."}, false
}

// detailOf returns a human detail only when the domain wrapped the sentinel
// with more context; the wrapping chain is written for people.
func detailOf(err, sentinel error) string {
	if err == sentinel {
		return ""
	}
	return err.Error()
}

// fail writes err as problem+json and aborts the request.
func fail(c *gin.Context, log *slog.Logger, err error) {
	p, known := problemFor(err)
	if !known {
		log.ErrorContext(c.Request.Context(), "request failed", "err", err,
			"route", c.FullPath(), "request_id", requestID(c))
	}
	writeProblem(c, p)
}

func writeProblem(c *gin.Context, p Problem) {
	p.Type = "https://docs.coalitionhub.example/problems/" + p.Code
	p.Instance = c.Request.URL.Path
	p.RequestID = requestID(c)
	if p.Status == http.StatusTooManyRequests && c.Writer.Header().Get("Retry-After") == "" {
		c.Header("Retry-After", "1")
	}
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(p.Status, p)
}
