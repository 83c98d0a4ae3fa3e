package devportal

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
)

// The three JSON shapes of DocSpace answers (docspace-api.md §4):
//
//	success     {"response":…,"count":N,"links":[{"href","action"}],"status":0,"statusCode":200}
//	validation  the success shape, response = ValidationProblemDetails, status 1, statusCode 400
//	error       {"error":{"message","type","stack","hresult"},"status":1,"statusCode":N}

type link struct {
	Href   string `json:"href"`
	Action string `json:"action"`
}

type successEnvelope struct {
	Response   any    `json:"response,omitempty"` // omitted when nil, like WhenWritingNull
	Count      int    `json:"count"`
	Links      []link `json:"links"`
	Status     int    `json:"status"`
	StatusCode int    `json:"statusCode"`
}

type apiError struct {
	Message string  `json:"message"`
	Type    *string `json:"type"`  // null, not omitted, when suppressed
	Stack   *string `json:"stack"` // null, not omitted, when suppressed
	HResult int32   `json:"hresult"`
}

type errorEnvelope struct {
	Error      apiError `json:"error"`
	Status     int      `json:"status"`
	StatusCode int      `json:"statusCode"`
}

// problemDetails is ASP.NET's ValidationProblemDetails as [ApiController]
// writes it for a failed model binding.
type problemDetails struct {
	Type    string              `json:"type"`
	Title   string              `json:"title"`
	Status  int                 `json:"status"`
	Errors  map[string][]string `json:"errors"`
	TraceID string              `json:"traceId"`
}

// HResults of the .NET exceptions the portal reports.
const (
	hresultArgument      int32 = -2147024809 // System.ArgumentException
	hresultException     int32 = -2146233088 // System.Exception and custom exceptions
	hresultFormat        int32 = -2146233033 // System.FormatException
	hresultNullReference int32 = -2147467261 // System.NullReferenceException
)

// requestLink is the one element of "links": the full request URL and method.
func requestLink(r *http.Request) []link {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return []link{{Href: scheme + "://" + r.Host + r.URL.RequestURI(), Action: r.Method}}
}

// writeJSON writes v as the whole body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // only our own types are written; this is a bug
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeSuccess wraps response in the success envelope with HTTP 200. count is
// the number of elements for a slice, 1 for any other non-nil value, 0 for nil.
func writeSuccess(w http.ResponseWriter, r *http.Request, response any, count int) {
	writeJSON(w, http.StatusOK, successEnvelope{
		Response:   response,
		Count:      count,
		Links:      requestLink(r),
		Status:     0,
		StatusCode: http.StatusOK,
	})
}

// writeValidation answers 400 the way [ApiController] does for a model that
// failed to bind: the success wrapper around ValidationProblemDetails, with
// status 1 and statusCode 400 (v3.7.1+).
func writeValidation(w http.ResponseWriter, r *http.Request, errs map[string][]string) {
	writeJSON(w, http.StatusBadRequest, successEnvelope{
		Response: problemDetails{
			Type:    "https://tools.ietf.org/html/rfc9110#section-15.5.1",
			Title:   "One or more validation errors occurred.",
			Status:  http.StatusBadRequest,
			Errors:  errs,
			TraceID: traceID(),
		},
		Count:      1,
		Links:      requestLink(r),
		Status:     1,
		StatusCode: http.StatusBadRequest,
	})
}

// writeError answers with the error envelope written by CustomExceptionHandler.
// An empty excType or stack is written as JSON null.
func writeError(w http.ResponseWriter, status int, message, excType, stack string, hresult int32) {
	e := apiError{Message: message, HResult: hresult}
	if excType != "" {
		e.Type = &excType
	}
	if stack != "" {
		e.Stack = &stack
	}
	writeJSON(w, status, errorEnvelope{Error: e, Status: 1, StatusCode: status})
}

// writeArgumentError is the 400 an ArgumentException thrown by an action becomes.
func writeArgumentError(w http.ResponseWriter, message, stack string) {
	writeError(w, http.StatusBadRequest, message, "System.ArgumentException", stack, hresultArgument)
}

// writeNotFound is the 404 for a path no controller serves.
func writeNotFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "Not Found", "", "", 0)
}

// traceID returns a W3C trace-context id like ASP.NET puts in problem details.
func traceID() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-00"
}
