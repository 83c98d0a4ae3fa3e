package docspace

import (
	"bytes"
	"encoding/json"
	"html"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"ipguard/internal/humantext"
)

// envelope is every JSON body DocSpace writes for API calls, read leniently:
//
//	success:    {"response": ..., "count": n, "links": [...], "status": 0, "statusCode": 200}
//	validation: {"response": {"title": ..., "errors": {"Field": ["msg"]}}, "status": 1, "statusCode": 400}
//	error:      {"error": {"message", "type", "stack", "hresult"}, "status": 1, "statusCode": 4xx/5xx}
//
// JSON property names match case-insensitively, as the server's own reader does.
type envelope struct {
	Response   json.RawMessage `json:"response"`
	Count      int             `json:"count"`
	Links      []link          `json:"links"`
	Status     int             `json:"status"`
	StatusCode int             `json:"statusCode"`
	Error      *apiError       `json:"error"`
}

type link struct {
	Href   string `json:"href"`
	Action string `json:"action"`
}

// apiError is the "error" member of an error envelope. Stack is read but
// never shown: it is server internals.
type apiError struct {
	Message string  `json:"message"`
	Type    *string `json:"type"`
	Stack   *string `json:"stack"`
	HResult int     `json:"hresult"`
}

// validationProblem is ASP.NET's ValidationProblemDetails, sent as the
// "response" of a failed model validation.
type validationProblem struct {
	Title  string              `json:"title"`
	Errors map[string][]string `json:"errors"`
}

// failed reports whether the envelope describes a failure, whatever the HTTP status.
func (e *envelope) failed() bool {
	return e.Status != 0 || e.StatusCode >= 400 || e.Error != nil
}

// message returns the server's explanation of a failed envelope, or "".
func (e *envelope) message() string {
	if e.Error != nil && strings.TrimSpace(e.Error.Message) != "" {
		return strings.TrimSpace(e.Error.Message)
	}
	if len(e.Response) > 0 {
		var vp validationProblem
		if json.Unmarshal(e.Response, &vp) == nil && (vp.Title != "" || len(vp.Errors) > 0) {
			return vp.String()
		}
		var s string
		if json.Unmarshal(e.Response, &s) == nil {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

// String renders the problem as "Title Field: msg; Field2: msg" with fields sorted.
func (vp validationProblem) String() string {
	fields := make([]string, 0, len(vp.Errors))
	for f := range vp.Errors {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		parts = append(parts, f+": "+strings.Join(vp.Errors[f], " "))
	}
	s := strings.TrimSpace(vp.Title)
	if len(parts) > 0 {
		if s != "" {
			s += " "
		}
		s += strings.Join(parts, "; ")
	}
	return s
}

// errorText extracts a human explanation from the body of a failed response:
// the message of an error or validation envelope, a bare JSON string (IP
// security's 403), or a summary of HTML or plain text (proxies). It returns ""
// for an empty body.
func errorText(body []byte, contentType string, sc scrubber) string {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return ""
	}
	switch b[0] {
	case '{':
		var env envelope
		if json.Unmarshal(b, &env) == nil {
			m := env.message()
			if m == "" { // a bare ProblemDetails, without the wrapper
				var vp validationProblem
				if json.Unmarshal(b, &vp) == nil {
					m = vp.String()
				}
			}
			return summarise(sc.clean(m))
		}
	case '"':
		var s string
		if json.Unmarshal(b, &s) == nil {
			return summarise(sc.clean(s))
		}
	}
	if strings.Contains(contentType, "html") || b[0] == '<' {
		return summarise(sc.clean(stripTags(string(b))))
	}
	return summarise(sc.clean(string(b)))
}

var (
	hiddenBlock = regexp.MustCompile(`(?is)<(script|style|head)\b.*?</(script|style|head)\s*>`)
	tag         = regexp.MustCompile(`(?s)<[^>]*>`)
)

// stripTags turns an HTML page into its visible text.
func stripTags(s string) string {
	s = hiddenBlock.ReplaceAllString(s, " ")
	s = tag.ReplaceAllString(s, " ")
	return html.UnescapeString(s)
}

// maxMessage bounds server text kept in an error, in bytes.
const maxMessage = 200

// summarise makes server text one safe line of at most maxMessage bytes:
// white space folded, the rest as humantext.Words says.
func summarise(s string) string { return humantext.Words(s, maxMessage) }

// withHint joins the server's message (maybe "") and the advice for status.
func withHint(status int, msg string) string {
	h := hint(status)
	switch {
	case msg == "" && h == "":
		return http.StatusText(status)
	case msg == "":
		return h
	case h == "":
		return msg
	}
	return msg + " (" + h + ")"
}

// decodeEnvelope reads the envelope of a 2xx body.
func decodeEnvelope(body []byte) (envelope, error) {
	var env envelope
	err := json.Unmarshal(body, &env)
	return env, err
}

// notJSON explains a 2xx body that decodeEnvelope refused with err.
func notJSON(body []byte, contentType string, err error, sc scrubber) string {
	b := bytes.TrimSpace(body)
	switch {
	case len(b) == 0:
		return "empty response"
	case strings.Contains(contentType, "html") || b[0] == '<':
		return "response is not JSON: " + summarise(sc.clean(stripTags(string(b))))
	}
	return "malformed JSON response: " + humantext.Line(sc.clean(err.Error()), maxDecodeMessage)
}

// isAPINotFound reports whether body is the API's own JSON error answer to
// a missing item (CustomExceptionHandler's envelope: "error" with a
// message, statusCode 404), not a proxy's page, an empty body, or the bare
// "Not Found" a path no controller serves gets (a wrong path prefix).
func isAPINotFound(body []byte) bool {
	var env envelope
	if json.Unmarshal(bytes.TrimSpace(body), &env) != nil || env.Error == nil || env.StatusCode != 404 {
		return false
	}
	m := strings.TrimSpace(env.Error.Message)
	return m != "" && !strings.EqualFold(m, "Not Found")
}
