package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	tvm "example.com/tokenvendingmachine" // registers the function, for the server role
	"example.com/tokenvendingmachine/cmd/loadtest/floor"
	"example.com/tokenvendingmachine/internal/functest"
	"example.com/tokenvendingmachine/internal/momentotest"
)

// serverRoleEnv, set in the child's environment, makes the binary serve
// FUNCTION_TARGET on this port instead of driving it.
const serverRoleEnv = "LOADTEST_SERVER_PORT"

// cpuProfileEnv, set in the server's environment, names the file it
// writes a CPU profile to: from SIGUSR1 until SIGTERM.
const cpuProfileEnv = "LOADTEST_CPUPROFILE"

// serve is the server role: it serves FUNCTION_TARGET on port, on
// loopback, as the functions framework does.
func serve(port string) error {
	if path := os.Getenv(cpuProfileEnv); path != "" {
		if err := profileOnSignal(path); err != nil {
			return err
		}
	}
	return funcframework.StartHostPort("127.0.0.1", port)
}

// profileOnSignal writes a CPU profile to path from SIGUSR1 until SIGTERM,
// which then ends the process.
func profileOnSignal(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	start := make(chan os.Signal, 1)
	stop := make(chan os.Signal, 1)
	signal.Notify(start, syscall.SIGUSR1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() {
		profiling := false
		for {
			select {
			case <-start:
				if !profiling {
					profiling = pprof.StartCPUProfile(f) == nil
				}
			case <-stop:
				if profiling {
					pprof.StopCPUProfile()
				}
				f.Close()
				os.Exit(0)
			}
		}
	}()
	return nil
}

// target is what a server serves: the function or the floor, and the
// environment it needs.
type target struct {
	entryPoint string
	env        map[string]string
}

// functionTarget is the function against emu, with the function's
// defaults, but for the limits, which would shape the run, plus extra.
func functionTarget(emu *momentotest.Server, extra map[string]string) target {
	env := map[string]string{
		"MOMENTO_API_KEY":       emu.APIKey(),
		"MOMENTO_EMULATOR_HOST": emu.Addr(),
		// The per-instance limits derive from the fleet's budget; it is
		// still counted, in Momento, but never refuses.
		"FLEET_MINT_RATE":  "1000000",
		"FLEET_MINT_BURST": "1000000",
	}
	for k, v := range extra {
		env[k] = v
	}
	return target{entryPoint: tvm.EntryPoint, env: env}
}

// floorTarget is the framework's floor.
func floorTarget() target { return target{entryPoint: floor.EntryPoint} }

// missFloorTarget is the floor of a miss, against emu.
func missFloorTarget(emu *momentotest.Server) target {
	return target{entryPoint: floor.MissEntryPoint, env: map[string]string{
		"MOMENTO_API_KEY":       emu.APIKey(),
		"MOMENTO_EMULATOR_HOST": emu.Addr(),
	}}
}

// server is a target served by a child process.
type server struct {
	proc       *functest.Process
	url        string
	listening  time.Duration
	firstToken time.Duration
	answer     Answer // the first token's response
	profiling  bool   // the process writes a CPU profile once told to start
}

// startServer starts this binary as t's server, as Cloud Functions runs
// it, and waits for its first token (for the function, its client is
// ipOf(0)). If cpuprofile is set, the server writes a CPU profile there,
// from startProfile until stop.
func startServer(t target, cpuprofile string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port, err := functest.FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	env := map[string]string{serverRoleEnv: strconv.Itoa(port), "FUNCTION_TARGET": t.entryPoint}
	if cpuprofile != "" {
		env[cpuProfileEnv] = cpuprofile
	}
	for k, v := range t.env {
		env[k] = v
	}
	// The function's defaults, whatever the caller's shell has set.
	cmd.Env = functest.Env(os.Environ(), env)
	cmd.Stdout = io.Discard // one log line per request, to a pipe as on Cloud Functions; not what is measured
	cmd.Stderr = os.Stderr
	start := time.Now()
	proc, err := functest.Start(cmd)
	if err != nil {
		return nil, err
	}
	s := &server{proc: proc, url: "http://127.0.0.1:" + strconv.Itoa(port) + "/", profiling: cpuprofile != ""}
	for {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			s.listening = time.Since(start)
			break
		}
		if time.Since(start) > 30*time.Second {
			s.stop()
			return nil, errors.New("the server did not listen within 30s")
		}
		time.Sleep(100 * time.Microsecond)
	}
	for {
		resp, body, err := functest.Get(s.url, ipOf(0))
		if err == nil && resp.StatusCode == http.StatusOK {
			s.firstToken = time.Since(start)
			s.answer = answerOf(resp.Header, body)
			return s, nil
		}
		if time.Since(start) > 30*time.Second {
			s.stop()
			return nil, errors.New("the server gave no token within 30s")
		}
		time.Sleep(time.Millisecond)
	}
}

// answerOf describes a response.
func answerOf(h http.Header, body []byte) Answer {
	a := Answer{Body: len(body)}
	for k := range h {
		if k != "Date" {
			a.Header = append(a.Header, k)
		}
	}
	slices.Sort(a.Header)
	return a
}

// startProfile tells the server to start its CPU profile, if it writes one.
func (s *server) startProfile() {
	if s.profiling {
		s.proc.Cmd.Process.Signal(syscall.SIGUSR1)
	}
}

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100 on
// every architecture Linux and Go share.
const userHZ = 100

// cpu returns the CPU time the server has used so far, all its threads,
// from /proc. Its resolution is 10 ms; the kernel accounts the time
// precisely and only reports it in ticks.
func (s *server) cpu() (CPUTime, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.proc.Cmd.Process.Pid))
	if err != nil {
		return CPUTime{}, fmt.Errorf("the server's CPU time: %w", err)
	}
	return parseStat(string(b))
}

// parseStat reads utime and stime, the 14th and 15th fields, from a
// /proc/PID/stat line. The second field, the command in parentheses, may
// hold spaces and parentheses: the fields are counted from its last ')'.
func parseStat(stat string) (CPUTime, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return CPUTime{}, errors.New("/proc/PID/stat without a command")
	}
	f := strings.Fields(stat[i+1:]) // from the 3rd field, the state
	if len(f) < 13 {
		return CPUTime{}, errors.New("/proc/PID/stat too short")
	}
	user, err1 := strconv.ParseInt(f[14-3], 10, 64)
	sys, err2 := strconv.ParseInt(f[15-3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return CPUTime{}, fmt.Errorf("/proc/PID/stat: %w", err)
	}
	tick := time.Second / userHZ
	return CPUTime{User: time.Duration(user) * tick, System: time.Duration(sys) * tick}, nil
}

// rss returns the server's peak and current resident memory, from /proc.
func (s *server) rss() (peak, now int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.proc.Cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmHWM":
			peak = kb << 10
		case "VmRSS":
			now = kb << 10
		}
	}
	return peak, now
}

func (s *server) stop() { s.proc.Stop(5 * time.Second) }
