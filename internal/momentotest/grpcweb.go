package momentotest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
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
// which turns binary gRPC-web into gRPC in process, with CORS in front and a
// shim (webWriter) for what the web SDK needs beyond that: the text variant
// and lower-case trailer names.

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
	if !strings.HasPrefix(ct, "application/grpc-web") {
		http.Error(w, "momentotest: this port speaks only gRPC-web", http.StatusUnsupportedMediaType)
		return
	}
	ww := &webWriter{w: w, text: strings.HasPrefix(ct, "application/grpc-web-text")}
	if ww.text {
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
		r.Header.Set("Content-Type", strings.Replace(ct, "grpc-web-text", "grpc-web", 1))
	}
	g.next.ServeHTTP(ww, r)
	ww.Flush()
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

// webWriter is the shim between vanguard's binary gRPC-web answer and the
// web SDK's transport (the npm package grpc-web 1.4.2), which needs two
// things vanguard does not do:
//
//   - The names in the trailer frame in lower case, as the gRPC-web protocol
//     asks: grpc-web 1.4.2 looks for "grpc-status" case-sensitively, and
//     without it takes a failed stream for one that ended cleanly (the web
//     SDK would then resubscribe). Vanguard writes Go's "Grpc-Status".
//   - For a text call, the answer in base64 under the text content type.
//     What is flushed (vanguard flushes at every message) is sent as base64
//     of its own, padded: grpc-web decodes what it has received four
//     characters at a time, so every part must end on a whole quantum.
//
// It holds what is written until Flush, and sends the whole frames it holds.
type webWriter struct {
	w           http.ResponseWriter
	text        bool
	buf         []byte // written and not yet sent
	wroteHeader bool
	plain       bool // the answer is not gRPC-web (an HTTP error): sent as is
}

func (ww *webWriter) Header() http.Header { return ww.w.Header() }

func (ww *webWriter) WriteHeader(code int) {
	if ww.wroteHeader {
		return
	}
	ww.wroteHeader = true
	h := ww.w.Header()
	ct := h.Get("Content-Type")
	ww.plain = !strings.HasPrefix(ct, "application/grpc-web")
	if !ww.plain && ww.text {
		h.Set("Content-Type", strings.Replace(ct, "grpc-web", "grpc-web-text", 1))
		h.Del("Content-Length") // base64 is longer
	}
	ww.w.WriteHeader(code)
}

func (ww *webWriter) Write(p []byte) (int, error) {
	ww.WriteHeader(http.StatusOK)
	if ww.plain {
		return ww.w.Write(p)
	}
	ww.buf = append(ww.buf, p...)
	return len(p), nil
}

// Flush sends the whole frames written since the last Flush.
func (ww *webWriter) Flush() {
	ww.WriteHeader(http.StatusOK)
	n := 0 // bytes of whole frames in buf
	for len(ww.buf)-n >= 5 {
		size := 5 + int(binary.BigEndian.Uint32(ww.buf[n+1:n+5]))
		if len(ww.buf)-n < size {
			break
		}
		if ww.buf[n]&0x80 != 0 { // trailers: "Name: value\r\n" lines
			lowerNames(ww.buf[n+5 : n+size])
		}
		n += size
	}
	if n > 0 {
		out := ww.buf[:n]
		if ww.text {
			out = base64.StdEncoding.AppendEncode(nil, out)
		}
		if _, err := ww.w.Write(out); err != nil {
			return // the client is gone; the call's context says so
		}
		ww.buf = append(ww.buf[:0], ww.buf[n:]...)
	}
	http.NewResponseController(ww.w).Flush() //nolint:errcheck // a failure is the client's leaving
}

// lowerNames lowers, in place, the names of the "Name: value" lines of a
// gRPC-web trailer frame.
func lowerNames(trailers []byte) {
	name := true // at a name: from a line's start to its colon
	for i, c := range trailers {
		switch {
		case c == '\n':
			name = true
		case c == ':':
			name = false
		case name && 'A' <= c && c <= 'Z':
			trailers[i] = c + 'a' - 'A'
		}
	}
}
