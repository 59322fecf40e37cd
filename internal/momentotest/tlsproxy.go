package momentotest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// TLSProxy is an HTTP CONNECT proxy on loopback that ends TLS for Momento's
// host names under one endpoint (cache.E:443, control.E:443, token.E:443 and
// storage.E:443) with a certificate of its own, and relays the plaintext
// HTTP/2 inside to a fake.
//
// It lets a client that dials Momento's real host names with TLS (a key's
// endpoint, or MOMENTO_ENDPOINT) reach the fake with nothing of the client
// changed: point HTTPS_PROXY at [TLSProxy.URL] and SSL_CERT_FILE at a file
// holding [TLSProxy.CertPEM], in the client's process. gRPC (v1.71 and
// later) leaves the host name for the proxy to resolve, so the endpoint is
// never looked up: use one under .invalid.
type TLSProxy struct {
	lis      net.Listener
	endpoint string // the Momento endpoint whose hosts it serves
	upstream string // the emulator's host:port
	config   *tls.Config
	certPEM  []byte

	wg sync.WaitGroup

	mu        sync.Mutex // guards the fields below
	conns     map[net.Conn]struct{}
	refused   []string // CONNECT targets it refused
	connected []string // CONNECT targets it relayed
}

// NewTLSProxy starts a proxy for endpoint's hosts that relays to upstream
// (a fake's [Server.Addr]).
func NewTLSProxy(endpoint, upstream string) (*TLSProxy, error) {
	hosts := []string{endpoint}
	for _, p := range []string{"cache", "control", "token", "storage"} {
		hosts = append(hosts, p+"."+endpoint)
	}
	certPEM, cert, err := selfSigned(hosts)
	if err != nil {
		return nil, fmt.Errorf("momentotest: certificate for %v: %w", hosts, err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("momentotest: listen: %w", err)
	}
	p := &TLSProxy{
		lis:      lis,
		endpoint: endpoint,
		upstream: upstream,
		certPEM:  certPEM,
		// gRPC clients require ALPN "h2".
		config: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}},
		conns:  make(map[net.Conn]struct{}),
	}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// NewTLSProxyT is NewTLSProxy for a test: it fails t on error and closes
// the proxy when the test ends.
func NewTLSProxyT(t Tester, endpoint, upstream string) *TLSProxy {
	t.Helper()
	p, err := NewTLSProxy(endpoint, upstream)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// URL is the proxy's address as HTTPS_PROXY wants it.
func (p *TLSProxy) URL() string { return "http://" + p.lis.Addr().String() }

// CertPEM is the proxy's certificate, its own root, in PEM: what
// SSL_CERT_FILE (Go) or NODE_EXTRA_CA_CERTS (Node) must name.
func (p *TLSProxy) CertPEM() []byte { return p.certPEM }

// Refused returns the CONNECT targets the proxy refused, as METHOD host:port.
func (p *TLSProxy) Refused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.refused...)
}

// Connected returns the CONNECT targets the proxy relayed, as host:port, in
// the order they came.
func (p *TLSProxy) Connected() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.connected...)
}

// Close stops the proxy and ends the connections it relays. It is safe to
// call more than once.
func (p *TLSProxy) Close() error {
	p.lis.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// track adds c to (or, with add false, removes it from) the connections
// that close ends.
func (p *TLSProxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *TLSProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.track(c, true)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.track(c, false)
			defer c.Close()
			p.handle(c)
		}()
	}
}

// handle answers one CONNECT, ends TLS and relays to the fake.
func (p *TLSProxy) handle(c net.Conn) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	host, port, err := net.SplitHostPort(req.Host)
	if req.Method != http.MethodConnect || err != nil || port != "443" ||
		(host != p.endpoint && !strings.HasSuffix(host, "."+p.endpoint)) {
		p.mu.Lock()
		p.refused = append(p.refused, req.Method+" "+req.Host)
		p.mu.Unlock()
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
		return
	}
	p.mu.Lock()
	p.connected = append(p.connected, req.Host)
	p.mu.Unlock()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	tc := tls.Server(&bufferedConn{Conn: c, r: br}, p.config)
	if err := tc.Handshake(); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	p.track(up, true)
	defer p.track(up, false)
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, tc); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(tc, up); tc.CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

// bufferedConn reads first what a bufio.Reader already holds.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// selfSigned makes a certificate for hosts that is its own root.
func selfSigned(hosts []string) ([]byte, tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "momentotest TLS proxy"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              hosts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("key pair: %w", err)
	}
	return certPEM, cert, nil
}
