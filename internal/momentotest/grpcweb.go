package momentotest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"

	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// gRPC-web, for browsers: the fake's gRPC server behind connectrpc.com/vanguard,
// which turns gRPC-web into gRPC in process, with CORS in front and a shim
// for the text variant, which vanguard does not speak.

// grpcWebHeaders are the request headers a page may send: those of the
// grpc-web transport (content-type, x-grpc-web, x-user-agent, grpc-timeout
// from the SDK's deadline) and the metadata of @gomomento/sdk-web
// (authorization, cache, agent and runtime-version on a client's first call,
// read-concern).
const grpcWebHeaders = "content-type, x-grpc-web, x-user-agent, grpc-timeout, authorization, cache, agent, runtime-version, read-concern"

// maxTextBody bounds a text request's body: base64 of an item of Momento's
// maximum size, with room to spare.
const maxTextBody = (maxItemSize + 64<<10) * 4 / 3

// GRPCWebHandler returns a handler that serves the fake's RPCs over gRPC-web,
// binary (application/grpc-web, application/grpc-web+proto) and text
// (application/grpc-web-text, as @gomomento/sdk-web sends), unary calls and
// server streams alike, to the same state as its gRPC port.
//
// A request with an Origin header is served only if allowedOrigins lists
// that origin exactly, or holds "*"; any other is refused with 403, its
// preflight too. An allowed preflight (OPTIONS) is answered 204, allowing
// POST and the headers the web SDK sends; answers expose grpc-status and
// grpc-message to the page. Requests without Origin (not from a browser)
// are served.
func (s *Server) GRPCWebHandler(allowedOrigins ...string) http.Handler {
	// Every service of Momento's protos goes to the gRPC server, so that an
	// RPC the fake does not model is recorded and refused as over gRPC.
	var services []*vanguard.Service
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if opts, ok := fd.Options().(*descriptorpb.FileOptions); ok && strings.HasPrefix(opts.GetGoPackage(), momentoGoPackage) {
			for i := range fd.Services().Len() {
				services = append(services, vanguard.NewServiceWithSchema(fd.Services().Get(i), s.srv))
			}
		}
		return true
	})
	t, err := vanguard.NewTranscoder(services, vanguard.WithDefaultServiceOptions(
		vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
		vanguard.WithTargetCodecs(vanguard.CodecProto),
	))
	if err != nil {
		panic(fmt.Sprintf("momentotest: gRPC-web transcoder: %v", err))
	}
	return &grpcWeb{next: t, origins: slices.Clone(allowedOrigins)}
}

// momentoGoPackage is the go_package of Momento's protos as the Go SDK
// registers them.
const momentoGoPackage = "github.com/momentohq/client-sdk-go;"

// ServeGRPCWeb serves [Server.GRPCWebHandler] on addr ("" means
// "127.0.0.1:0") until Close, and returns its base URL, such as
// "http://127.0.0.1:8082", for the web SDK's endpoint overrides.
func (s *Server) ServeGRPCWeb(addr string, allowedOrigins ...string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("momentotest: listen for gRPC-web: %w", err)
	}
	srv := &http.Server{Handler: s.GRPCWebHandler(allowedOrigins...)}
	s.mu.Lock()
	s.webServers = append(s.webServers, srv)
	s.mu.Unlock()
	go srv.Serve(lis) //nolint:errcheck // Serve returns when Close closes srv.
	return "http://" + lis.Addr().String(), nil
}

// grpcWeb is the handler GRPCWebHandler returns.
type grpcWeb struct {
	next    http.Handler // vanguard's transcoder to the fake's gRPC server
	origins []string
}

func (g *grpcWeb) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" {
		w.Header().Add("Vary", "Origin")
		if !slices.Contains(g.origins, origin) && !slices.Contains(g.origins, "*") {
			http.Error(w, "momentotest: origin not allowed", http.StatusForbidden)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.Header().Set("Access-Control-Allow-Methods", "POST")
			w.Header().Set("Access-Control-Allow-Headers", grpcWebHeaders)
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Access-Control-Expose-Headers", "grpc-status, grpc-message, grpc-status-details-bin")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "momentotest: gRPC-web calls are POSTs", http.StatusMethodNotAllowed)
		return
	}
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/grpc-web-text"):
		serveText(g.next, w, r)
	case strings.HasPrefix(ct, "application/grpc-web"):
		g.next.ServeHTTP(w, r)
	default:
		http.Error(w, "momentotest: this port speaks only gRPC-web", http.StatusUnsupportedMediaType)
	}
}

// serveText serves a gRPC-web-text call with next, which speaks only binary
// gRPC-web: it decodes the request body from base64 and encodes the
// response, swapping the content types both ways. Each part of the response
// next flushes (vanguard flushes at every message) is sent as base64 of its
// own, padded, and flushed: grpc-web clients decode what they have received
// four characters at a time, so every part must end on a whole quantum.
func serveText(next http.Handler, w http.ResponseWriter, r *http.Request) {
	text, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTextBody))
	if err != nil {
		http.Error(w, "momentotest: request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := decodeText(text)
	if err != nil {
		http.Error(w, "momentotest: request body is not base64", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Del("Content-Length")
	r.Header.Set("Content-Type", strings.Replace(r.Header.Get("Content-Type"), "grpc-web-text", "grpc-web", 1))
	tw := &textWriter{w: w}
	next.ServeHTTP(tw, r)
	tw.Flush()
}

// decodeText decodes base64 that may be several padded chunks one after
// another, as a streaming client may send it; whitespace is ignored.
func decodeText(text []byte) ([]byte, error) {
	text = bytes.Join(bytes.Fields(text), nil)
	var out []byte
	for len(text) > 0 {
		n := len(text) // up to the end of the quantum holding the first '='
		if i := bytes.IndexByte(text, '='); i >= 0 {
			n = min(n, (i/4+1)*4)
		}
		var err error
		if out, err = base64.StdEncoding.AppendDecode(out, text[:n]); err != nil {
			return nil, err
		}
		text = text[n:]
	}
	return out, nil
}

// textWriter turns a binary gRPC-web response into a text one: see serveText.
type textWriter struct {
	w           http.ResponseWriter
	buf         []byte // written since the last Flush
	wroteHeader bool
	plain       bool // the answer is not gRPC-web (an HTTP error): sent as is
}

func (t *textWriter) Header() http.Header { return t.w.Header() }

func (t *textWriter) WriteHeader(code int) {
	if t.wroteHeader {
		return
	}
	t.wroteHeader = true
	h := t.w.Header()
	ct := h.Get("Content-Type")
	t.plain = !strings.HasPrefix(ct, "application/grpc-web")
	if !t.plain {
		h.Set("Content-Type", strings.Replace(ct, "grpc-web", "grpc-web-text", 1))
		h.Del("Content-Length") // base64 is longer
	}
	t.w.WriteHeader(code)
}

func (t *textWriter) Write(p []byte) (int, error) {
	t.WriteHeader(http.StatusOK)
	if t.plain {
		return t.w.Write(p)
	}
	t.buf = append(t.buf, p...)
	return len(p), nil
}

// Flush sends what was written since the last Flush as one base64 chunk.
func (t *textWriter) Flush() {
	t.WriteHeader(http.StatusOK)
	if len(t.buf) > 0 {
		if _, err := t.w.Write(base64.StdEncoding.AppendEncode(nil, t.buf)); err != nil {
			return // the client is gone; the call's context says so
		}
		t.buf = t.buf[:0]
	}
	http.NewResponseController(t.w).Flush() //nolint:errcheck // a failure is the client's leaving
}
