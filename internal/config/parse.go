package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"example.com/tokenvendingmachine/internal/momentokey"
	"example.com/tokenvendingmachine/internal/scope"
)

// parser reads variables through getenv, collecting the errors of those
// that do not parse; FromEnv checks the parsed values together.

// set reports whether the variable name is set to something.
func (p *parser) set(name string) bool { return p.str(name) != "" }

// topics parses a TOPICS-style list; unset means every topic.
func (p *parser) topics(name string) scope.Scope {
	v := p.str(name)
	if v == "" {
		return scope.All()
	}
	s, err := scope.Parse(v)
	if err != nil {
		p.invalid(name, "must be *, none, or a comma-separated list of topics and delimited prefixes such as order-*: %v", err)
		return scope.All()
	}
	return s
}

// template parses a list of topics in which {sub} stands for a user.
func (p *parser) template(name string) scope.Template {
	v := p.str(name)
	if v == "" {
		return scope.Template{}
	}
	t, err := scope.ParseTemplate(v)
	if err != nil {
		p.invalid(name, "must be a comma-separated list of topics and delimited prefixes, in which {sub} stands for the user, such as user-{sub}-*: %v", err)
	}
	return t
}

// parser collects the errors of the variables it reads.
type parser struct {
	getenv func(string) string
	errs   []error
	bad    map[string]bool // variables that failed to parse
}

func (p *parser) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

// invalid records that name failed to parse.
func (p *parser) invalid(name, format string, args ...any) {
	if p.bad == nil {
		p.bad = make(map[string]bool)
	}
	p.bad[name] = true
	p.fail(name+" "+format, args...)
}

// ok reports whether name parsed (or was unset).
func (p *parser) ok(name string) bool { return !p.bad[name] }

func (p *parser) str(name string) string { return strings.TrimSpace(p.getenv(name)) }

func (p *parser) strOr(name, def string) string {
	if v := p.str(name); v != "" {
		return v
	}
	return def
}

func (p *parser) duration(name string, def time.Duration) time.Duration {
	v := p.str(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.invalid(name, "must be a duration such as 55m or 1h, got %q", v)
		return def
	}
	return d
}

func (p *parser) integer(name string, def, lo, hi int) int {
	v := p.str(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.invalid(name, "must be a whole number from %d to %d, got %q", lo, hi, v)
		return def
	}
	return n
}

func (p *parser) float(name string, def float64) float64 {
	v := p.str(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		p.invalid(name, "must be a number, got %q", v)
		return def
	}
	return f
}

func (p *parser) hostPort(name string) string {
	v := p.str(name)
	if v == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(v)
	if n, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil || n == 0 {
		p.invalid(name, "must be host:port, got %q", v)
		return ""
	}
	return v
}

// endpoint parses a Momento endpoint in any of the forms a user pastes.
func (p *parser) endpoint(name string) string {
	v := p.str(name)
	if v == "" {
		return ""
	}
	ep, err := momentokey.NormalizeEndpoint(v)
	if err != nil {
		p.invalid(name, "must be a Momento endpoint such as %s or https://api.cache.%s, got %q", ExampleEndpoint, ExampleEndpoint, v)
		return ""
	}
	return ep
}

// origins parses a comma-separated list of origins; "*" (or unset) means any.
func (p *parser) origins(name string) []string {
	v := p.str(name)
	if v == "" || v == "*" {
		return nil
	}
	var out []string
	for _, o := range strings.Split(v, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		canon, ok := CanonicalOrigin(o)
		if !ok {
			p.invalid(name, "must be * or a comma-separated list of origins such as https://shop.example.com, got %q", o)
			continue
		}
		out = append(out, canon)
	}
	if len(out) == 0 && p.ok(name) {
		p.invalid(name, "lists no origin")
	}
	return out
}
