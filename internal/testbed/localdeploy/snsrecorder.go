package localdeploy

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Published is one SNS Publish call as the functions sent it, with the body
// each protocol's subscribers receive: SNS gives e-mail subscribers the
// Subject and the "email" body, SMS subscribers the "sms" body, and every
// other protocol (our SQS mailbox) the "default" body.
type Published struct {
	TopicARN string
	Subject  string
	Default  string
	Email    string
	SMS      string
}

// awsFront is a reverse proxy in front of moto that the functions reach as
// their AWS_ENDPOINT_URL. It records SNS Publish calls (moto does not keep
// the e-mail and SMS bodies anywhere a test can read) and can make SNS fail,
// or deliver a message and lose its answer.
type awsFront struct {
	mu          sync.Mutex
	published   []Published
	failPublish bool
	dropAnswers int // Publish calls still to deliver without answering
	srv         *http.Server
	url         string
}

func startFront(target string) (*awsFront, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	f := &awsFront{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	f.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") == "Publish" {
			f.mu.Lock()
			fail := f.failPublish
			if !fail {
				f.published = append(f.published, decodePublish(form))
			}
			drop := !fail && f.dropAnswers > 0
			if drop {
				f.dropAnswers--
			}
			f.mu.Unlock()
			if drop {
				// SNS accepts (moto delivers), then the answer is lost: the
				// connection closes before a byte of it is sent.
				proxy.ServeHTTP(discardWriter{header: http.Header{}}, r)
				if hj, ok := w.(http.Hijacker); ok {
					if conn, _, err := hj.Hijack(); err == nil {
						conn.Close()
						return
					}
				}
				panic(http.ErrAbortHandler)
			}
			if fail {
				w.Header().Set("Content-Type", "text/xml")
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, `<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>injected SNS failure</Message></Error><RequestId>local</RequestId></ErrorResponse>`)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.url = "http://" + ln.Addr().String()
	go f.srv.Serve(ln)
	return f, nil
}

func decodePublish(form url.Values) Published {
	p := Published{TopicARN: form.Get("TopicArn"), Subject: form.Get("Subject"), Default: form.Get("Message")}
	if strings.EqualFold(form.Get("MessageStructure"), "json") {
		var m map[string]string
		if json.Unmarshal([]byte(form.Get("Message")), &m) == nil {
			p.Default, p.Email, p.SMS = m["default"], m["email"], m["sms"]
			if p.Email == "" {
				p.Email = p.Default
			}
			if p.SMS == "" {
				p.SMS = p.Default
			}
		}
	}
	return p
}

// Published returns the SNS messages the functions published so far.
func (s *Stack) Published() []Published {
	s.front.mu.Lock()
	defer s.front.mu.Unlock()
	return append([]Published(nil), s.front.published...)
}

// DropPublishAnswers makes the next n SNS Publish calls reach SNS (and the
// subscribers) while their answers are lost: the connection closes before
// the answer, as when a network path drops it.
func (s *Stack) DropPublishAnswers(n int) {
	s.front.mu.Lock()
	defer s.front.mu.Unlock()
	s.front.dropAnswers = n
}

// discardWriter is an http.ResponseWriter that throws the answer away.
type discardWriter struct{ header http.Header }

func (d discardWriter) Header() http.Header         { return d.header }
func (d discardWriter) WriteHeader(int)             {}
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// FailPublish makes every SNS Publish fail with an HTTP 500 until turned off.
func (s *Stack) FailPublish(on bool) {
	s.front.mu.Lock()
	defer s.front.mu.Unlock()
	s.front.failPublish = on
}
