package momentotest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/momentohq/client-sdk-go/momento"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The gRPC-web tests call the fake as a browser's grpc-web transport does,
// with frames built by hand around the SDK's own messages.

const (
	webBinary = "application/grpc-web+proto"
	webText   = "application/grpc-web-text"
)

// webServe starts a fake with cache "pizza" and its gRPC-web port, allowing
// origins, and returns both.
func webServe(t *testing.T, origins ...string) (*Server, string) {
	t.Helper()
	s := NewServerT(t, "pizza")
	url, err := s.ServeGRPCWeb("", origins...)
	if err != nil {
		t.Fatalf("ServeGRPCWeb: %v", err)
	}
	return s, url
}

// webRequest builds a gRPC-web call of method ("/service/Method") carrying
// msg, in contentType, with key's secret as authorization and cache as the
// cache header.
func webRequest(ctx context.Context, t *testing.T, url, method, contentType, key, cache string, msg proto.Message) *http.Request {
	t.Helper()
	b, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	body := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(b)))
	body = append(body, b...)
	if strings.HasPrefix(contentType, webText) {
		body = []byte(base64.StdEncoding.EncodeToString(body))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+method, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Grpc-Web", "1")
	if key != "" {
		req.Header.Set("Authorization", secretOf(t, key))
	}
	if cache != "" {
		req.Header.Set("Cache", cache)
	}
	return req
}

// webResult is what a gRPC-web call answered.
type webResult struct {
	code     codes.Code
	messages [][]byte
}

// webReader reads the frames of a gRPC-web response, binary or text.
type webReader struct {
	t    *testing.T
	r    *bufio.Reader
	text bool
	buf  []byte // decoded, not yet parsed
	code codes.Code
	done bool
}

func newWebReader(t *testing.T, resp *http.Response) *webReader {
	ct := resp.Header.Get("Content-Type")
	wr := &webReader{t: t, r: bufio.NewReader(resp.Body), text: strings.HasPrefix(ct, webText)}
	if v := resp.Header.Get("Grpc-Status"); v != "" { // a trailers-only answer
		n, _ := strconv.Atoi(v)
		wr.code, wr.done = codes.Code(n), true
	}
	return wr
}

// next returns the next message, or nil once the trailers have been read
// (then wr.code is the call's status).
func (wr *webReader) next() []byte {
	wr.t.Helper()
	for !wr.done {
		if len(wr.buf) >= 5 {
			n := int(binary.BigEndian.Uint32(wr.buf[1:5]))
			if len(wr.buf) >= 5+n {
				flag, payload := wr.buf[0], wr.buf[5:5+n]
				wr.buf = wr.buf[5+n:]
				if flag&0x80 == 0 {
					return payload
				}
				wr.done = true
				// Names case-sensitively, as grpc-web 1.4.2 reads them.
				for _, line := range strings.Split(string(payload), "\r\n") {
					if v, ok := strings.CutPrefix(line, "grpc-status:"); ok {
						c, _ := strconv.Atoi(strings.TrimSpace(v))
						wr.code = codes.Code(c)
					}
				}
				return nil
			}
		}
		wr.fill()
	}
	return nil
}

// fill reads more of the body into wr.buf. In text mode it decodes four
// characters at a time, as grpc-web clients do, so every chunk the server
// flushed must be whole base64.
func (wr *webReader) fill() {
	wr.t.Helper()
	chunk := make([]byte, 4096)
	if wr.text {
		chunk = chunk[:4]
		if _, err := io.ReadFull(wr.r, chunk); err != nil {
			wr.t.Fatalf("reading a text response: %v (with %d bytes unparsed)", err, len(wr.buf))
		}
		b, err := base64.StdEncoding.DecodeString(string(chunk))
		if err != nil {
			wr.t.Fatalf("a text response's quantum %q is not base64: %v", chunk, err)
		}
		wr.buf = append(wr.buf, b...)
		return
	}
	n, err := wr.r.Read(chunk)
	if n == 0 && err != nil {
		wr.t.Fatalf("reading a binary response: %v (with %d bytes unparsed)", err, len(wr.buf))
	}
	wr.buf = append(wr.buf, chunk[:n]...)
}

// webCall makes a unary gRPC-web call and reads the whole answer.
func webCall(t *testing.T, req *http.Request) webResult {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", req.URL.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: HTTP %s: %s", req.URL.Path, resp.Status, b)
	}
	if want := req.Header.Get("Content-Type"); !strings.HasPrefix(resp.Header.Get("Content-Type"), want) {
		t.Errorf("POST %s as %s answered Content-Type %q", req.URL.Path, want, resp.Header.Get("Content-Type"))
	}
	wr := newWebReader(t, resp)
	var res webResult
	for msg := wr.next(); msg != nil; msg = wr.next() {
		res.messages = append(res.messages, msg)
	}
	res.code = wr.code
	return res
}

func TestGRPCWebUnary(t *testing.T) {
	for _, ct := range []string{webBinary, "application/grpc-web", webText, "application/grpc-web-text+proto"} {
		t.Run(ct, func(t *testing.T) {
			s, url := webServe(t)
			ctx := context.Background()
			setReq := newMessage("cache_client._SetRequest")
			set(setReq, "cache_key", protoreflect.ValueOfBytes([]byte("k")))
			set(setReq, "cache_body", protoreflect.ValueOfBytes([]byte("v\x00\xff")))
			set(setReq, "ttl_milliseconds", protoreflect.ValueOfUint64(60_000))
			if res := webCall(t, webRequest(ctx, t, url, "/cache_client.Scs/Set", ct, s.APIKey(), "pizza", setReq.Interface())); res.code != codes.OK || len(res.messages) != 1 {
				t.Fatalf("Set = %v with %d messages, want OK with 1", res.code, len(res.messages))
			}

			get := newMessage("cache_client._GetRequest")
			set(get, "cache_key", protoreflect.ValueOfBytes([]byte("k")))
			res := webCall(t, webRequest(ctx, t, url, "/cache_client.Scs/Get", ct, s.APIKey(), "pizza", get.Interface()))
			if res.code != codes.OK || len(res.messages) != 1 {
				t.Fatalf("Get = %v with %d messages, want OK with 1", res.code, len(res.messages))
			}
			resp := newMessage("cache_client._GetResponse")
			if err := proto.Unmarshal(res.messages[0], resp.Interface()); err != nil {
				t.Fatal(err)
			}
			if got := getBytes(resp, "cache_body"); string(got) != "v\x00\xff" {
				t.Errorf("Get's cache_body = %q, want %q", got, "v\x00\xff")
			}

			// Refusals come back as gRPC statuses.
			if res := webCall(t, webRequest(ctx, t, url, "/cache_client.Scs/Get", ct, "", "pizza", get.Interface())); res.code != codes.Unauthenticated {
				t.Errorf("Get without authorization = %v, want Unauthenticated", res.code)
			}
			if res := webCall(t, webRequest(ctx, t, url, "/cache_client.Scs/Get", ct, s.APIKey(), "nope", get.Interface())); res.code != codes.NotFound {
				t.Errorf("Get in a missing cache = %v, want NotFound", res.code)
			}
		})
	}
}

// TestGRPCWebUnmodelled: over gRPC-web too, an RPC of Momento's protos that
// the fake does not model is recorded and answers Unimplemented.
func TestGRPCWebUnmodelled(t *testing.T) {
	s, url := webServe(t)
	methods := []string{"/cache_client.Scs/DictionaryFetch", "/leaderboard.Leaderboard/GetRank"}
	for _, m := range methods {
		req := webRequest(context.Background(), t, url, m, webText, s.APIKey(), "pizza", newMessage("cache_client._GetRequest").Interface())
		if res := webCall(t, req); res.code != codes.Unimplemented {
			t.Errorf("%s = %v, want Unimplemented", m, res.code)
		}
	}
	if diff := cmp.Diff(methods, s.Unmodelled()); diff != "" {
		t.Errorf("Unmodelled() (-want +got):\n%s", diff)
	}
}

// TestGRPCWebTextSubscription subscribes in text mode, as the web SDK does:
// the heartbeat and a published item arrive while the stream stays open, and
// the stream ends with Unauthenticated when its token expires.
func TestGRPCWebTextSubscription(t *testing.T) {
	s, url := webServe(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok := mintSubscribeOnly(t, authClient(t, s, s.APIKey()), "pizza", 60)
	req := newMessage("cache_client.pubsub._SubscriptionRequest")
	set(req, "cache_name", protoreflect.ValueOfString("pizza"))
	set(req, "topic", protoreflect.ValueOfString("orders"))
	resp, err := http.DefaultClient.Do(webRequest(ctx, t, url, "/cache_client.pubsub.Pubsub/Subscribe", webText, tok.ApiKey, "", req.Interface()))
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, webText) {
		t.Fatalf("Subscribe answered Content-Type %q, want %s", ct, webText)
	}
	wr := newWebReader(t, resp)
	kind := func() string {
		t.Helper()
		b := wr.next()
		if b == nil {
			t.Fatalf("the subscription ended with %v", wr.code)
		}
		item := newMessage("cache_client.pubsub._SubscriptionItem")
		if err := proto.Unmarshal(b, item.Interface()); err != nil {
			t.Fatal(err)
		}
		if k := whichOneof(item, "kind"); k != "item" {
			return string(k)
		}
		return "item " + getString(getMessage(getMessage(item, "item"), "value"), "text")
	}
	if got := kind(); got != "heartbeat" {
		t.Fatalf("first message = %s, want a heartbeat", got)
	}
	if _, err := topicClient(t, s, s.APIKey()).Publish(ctx, &momento.TopicPublishRequest{CacheName: "pizza", TopicName: "orders", Value: momento.String("order 7 is ready")}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if got, want := kind(), "item order 7 is ready"; got != want {
		t.Fatalf("second message = %s, want %s", got, want)
	}
	s.FastForward(time.Minute)
	if b := wr.next(); b != nil || wr.code != codes.Unauthenticated {
		t.Errorf("after the token expired: a message (%v) or status %v, want the end with Unauthenticated", b != nil, wr.code)
	}
}

func TestGRPCWebCORS(t *testing.T) {
	const page = "https://page.example"
	s, url := webServe(t, page)
	tests := []struct {
		name, origin, method string
		wantStatus           int
		wantAllowOrigin      string
	}{
		{"preflight from a listed origin", page, http.MethodOptions, http.StatusNoContent, page},
		{"preflight from another origin", "https://evil.example", http.MethodOptions, http.StatusForbidden, ""},
		{"call from a listed origin", page, http.MethodPost, http.StatusOK, page},
		{"call from another origin", "https://evil.example", http.MethodPost, http.StatusForbidden, ""},
		{"call without Origin", "", http.MethodPost, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.ResetCounts()
			get := newMessage("cache_client._GetRequest")
			set(get, "cache_key", protoreflect.ValueOfBytes([]byte("k")))
			req := webRequest(context.Background(), t, url, "/cache_client.Scs/Get", webText, s.APIKey(), "pizza", get.Interface())
			req.Method = tt.method
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.method == http.MethodOptions {
				req.Body, req.ContentLength = nil, 0
				req.Header = http.Header{"Origin": {tt.origin}, "Access-Control-Request-Method": {"POST"},
					"Access-Control-Request-Headers": {"authorization,cache,content-type,x-grpc-web,x-user-agent"}}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body) //nolint:errcheck
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.wantAllowOrigin {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.wantAllowOrigin)
			}
			wantCalls := 0
			if tt.wantStatus == http.StatusOK {
				wantCalls = 1
			}
			if got := s.Count(MethodGet); got != wantCalls {
				t.Errorf("the fake served %d Gets, want %d", got, wantCalls)
			}
			switch {
			case tt.method == http.MethodOptions && tt.wantStatus == http.StatusNoContent:
				allowed := strings.Split(resp.Header.Get("Access-Control-Allow-Headers"), ", ")
				for _, h := range []string{"content-type", "x-grpc-web", "x-user-agent", "grpc-timeout", "authorization", "cache", "agent", "runtime-version"} {
					if !slices.Contains(allowed, h) {
						t.Errorf("Access-Control-Allow-Headers %q lacks %s", allowed, h)
					}
				}
			case tt.wantAllowOrigin != "":
				exposed := strings.Split(resp.Header.Get("Access-Control-Expose-Headers"), ", ")
				if !slices.Contains(exposed, "grpc-status") || !slices.Contains(exposed, "grpc-message") {
					t.Errorf("Access-Control-Expose-Headers = %q, want grpc-status and grpc-message", exposed)
				}
			}
		})
	}
}

func TestDecodeText(t *testing.T) {
	tests := []struct {
		name, text string
		want       []byte
	}{
		{"one chunk", "AAECAw==", []byte{0, 1, 2, 3}},
		{"padded chunks one after another", "AA==AQI=AwQF", []byte{0, 1, 2, 3, 4, 5}},
		{"with whitespace", "AA==\r\nAQI=", []byte{0, 1, 2}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeText([]byte(tt.text))
			if err != nil {
				t.Fatalf("decodeText(%q): %v", tt.text, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decodeText(%q) (-want +got):\n%s", tt.text, diff)
			}
		})
	}
	for _, text := range []string{"A===", "AA=A", "!!!!"} {
		if _, err := decodeText([]byte(text)); err == nil {
			t.Errorf("decodeText(%q) succeeded, want an error", text)
		}
	}
}

// writesRecorder records each Write separately.
type writesRecorder struct {
	header http.Header
	writes []string
}

func (w *writesRecorder) Header() http.Header { return w.header }
func (w *writesRecorder) WriteHeader(int)     {}
func (w *writesRecorder) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// TestWebWriter: the answer goes out a whole frame at a time, trailer names
// in lower case; in text mode each flush as padded base64 of its own, since
// grpc-web-text clients decode whatever has arrived four characters at a
// time.
func TestWebWriter(t *testing.T) {
	data := []byte("\x00\x00\x00\x00\x02hi")
	trailers := []byte("\x80\x00\x00\x00\x1aGrpc-Status: 0\r\nX-Ab: Cd\r\n")
	lowered := []byte("\x80\x00\x00\x00\x1agrpc-status: 0\r\nx-ab: Cd\r\n")
	tests := []struct {
		text bool
		want []string
	}{
		{false, []string{string(data), string(lowered)}},
		{true, []string{base64.StdEncoding.EncodeToString(data), base64.StdEncoding.EncodeToString(lowered)}},
	}
	for _, tt := range tests {
		rec := &writesRecorder{header: http.Header{"Content-Type": {"application/grpc-web+proto"}}}
		ww := &webWriter{w: rec, text: tt.text}
		ww.Write(data[:3])      //nolint:errcheck
		ww.Flush()              // half a frame: nothing to send
		ww.Write(data[3:])      //nolint:errcheck
		ww.Write(trailers[:10]) //nolint:errcheck
		ww.Flush()
		ww.Write(trailers[10:]) //nolint:errcheck
		ww.Flush()
		ww.Flush()
		if diff := cmp.Diff(tt.want, rec.writes); diff != "" {
			t.Errorf("text %v: writes (-want +got):\n%s", tt.text, diff)
		}
		want := "application/grpc-web+proto"
		if tt.text {
			want = "application/grpc-web-text+proto"
		}
		if got := rec.header.Get("Content-Type"); got != want {
			t.Errorf("text %v: Content-Type = %q, want %q", tt.text, got, want)
		}
	}
}
