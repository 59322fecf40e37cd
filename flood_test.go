package tokenvendingmachine

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/cloudlog"
)

// TestFloodFromTwoNetworks floods one instance with the default limits from
// one IPv6 /48 (a new /64 every request) and one IPv4 /16 (a new address
// every request), 50 requests at a time, while new visitors and returning
// ones from other networks arrive. The clock moves a second between rounds;
// nothing leaves this process.
func TestFloodFromTwoNetworks(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 80,000 requests")
	}
	const rounds, perSource, workers = 40, 1000, 50
	// The defaults, not the harness's room for bursts.
	hs := newHarness(t, map[string]string{"FLEET_MINT_BURST": ""})

	// Returning visitors got their tokens before the flood, from another
	// instance: this one has none of them in memory, Momento has them all.
	other := hs.instance(t)
	returning := make([]string, rounds)
	tokens := map[string]string{}
	for i := range returning {
		returning[i] = fmt.Sprintf("%d.77.1.7", 11+i) // each from a network of its own
		w := hs.getFrom(other, returning[i])
		if w.Code != http.StatusOK {
			t.Fatalf("returning visitor's first visit: status %d", w.Code)
		}
		tokens[returning[i]] = decode(t, w).Token
		hs.momento.FastForward(time.Second) // within the default limits
	}

	flooded := hs.h
	flooded.log = cloudlog.New(io.Discard) // 80,000 request lines are not what is checked
	newOK, returningOK := 0, 0
	for round := range rounds {
		work := make(chan string)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ip := range work {
					w := httptest.NewRecorder()
					flooded.ServeHTTP(w, hs.request(request{ip: ip, untracked: true}))
				}
			}()
		}
		// The probes arrive in the middle of the round's flood.
		probes := make(chan struct{})
		go func() {
			defer close(probes)
			time.Sleep(time.Millisecond)
			if w := hs.getFrom(flooded, fmt.Sprintf("%d.88.1.9", 60+round)); w.Code == http.StatusOK {
				newOK++
			}
			ip := returning[round]
			if w := hs.getFrom(flooded, ip); w.Code == http.StatusOK && decode(t, w).Token == tokens[ip] {
				returningOK++
			} else {
				t.Errorf("round %d: returning visitor got status %d", round, w.Code)
			}
		}()
		n := round * perSource
		for i := range perSource {
			work <- fmt.Sprintf("2001:db8:77:%x::1", n+i)                   // one /48, a new /64 each time
			work <- fmt.Sprintf("172.20.%d.%d", (n+i)/250%256, (n+i)%250+1) // one /16
		}
		close(work)
		wg.Wait()
		<-probes
		hs.momento.FastForward(time.Second)
	}
	t.Logf("during the flood: %d of %d new visitors and %d of %d returning visitors got a token; %d mints in all",
		newOK, rounds, returningOK, rounds, len(hs.momento.Mints())-rounds)
	if newOK*100 < rounds*95 {
		t.Errorf("%d of %d new visitors got a token during the flood, want at least 95%%", newOK, rounds)
	}
	if returningOK != rounds {
		t.Errorf("%d of %d returning visitors got their token, want all", returningOK, rounds)
	}
}
