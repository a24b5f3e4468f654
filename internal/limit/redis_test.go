package limit

import (
	"context"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

const redisPassword = "redis-SECRET-pw-81c2"

func redisConfig(url string) Config {
	return Config{PerSubject: PerSubject{Rate: 1, Burst: 10}, Redis: url}
}

func fastOpts(h *harness) Options {
	return Options{Metrics: h.m, Logger: h.log, RedisTimeout: 100 * time.Millisecond, RedisRetry: 50 * time.Millisecond}
}

// TestRedisSharedBudget: two limiters (two replicas) on one Redis share
// one budget per subject; another subject has its own.
func TestRedisSharedBudget(t *testing.T) {
	rs := testenv.StartRedis(t, redisPassword)
	h1, h2 := newHarness(), newHarness()
	a := newLimiter(t, redisConfig(rs.URL), fastOpts(h1))
	b := newLimiter(t, redisConfig(rs.URL), fastOpts(h2))
	ctx := context.Background()
	allowed := 0
	var lastRetry time.Duration
	for i := range 40 {
		l := a
		if i%2 == 1 {
			l = b
		}
		ok, retry := l.Allow(ctx, "customer-a", "alice")
		if ok {
			allowed++
		} else {
			lastRetry = retry
		}
	}
	// Burst 10 at 1/s: 10, or 11 if a second passed during the loop.
	if allowed < 10 || allowed > 11 {
		t.Errorf("%d of 40 allowed across two replicas, want 10 (one shared budget)", allowed)
	}
	if lastRetry <= 0 || lastRetry > time.Second {
		t.Errorf("retry-after %v, want within (0, 1s]", lastRetry)
	}
	if got := RetryAfterSeconds(lastRetry); got != 1 {
		t.Errorf("Retry-After %d, want 1", got)
	}
	for i := range 10 {
		if ok, _ := b.Allow(ctx, "customer-a", "bob"); !ok {
			t.Errorf("bob's request %d refused", i)
		}
	}
	for _, h := range []*harness{h1, h2} {
		if got := testutil.ToFloat64(h.m.redisUp); got != 1 {
			t.Errorf("redis_up = %v", got)
		}
		if got := testutil.ToFloat64(h.m.fallbacks); got != 0 {
			t.Errorf("fallbacks = %v", got)
		}
	}
	limited := testutil.ToFloat64(h1.m.limited.WithLabelValues("customer-a")) + testutil.ToFloat64(h2.m.limited.WithLabelValues("customer-a"))
	if int(limited) != 40-allowed {
		t.Errorf("limited = %v, want %d", limited, 40-allowed)
	}
	// The budget lives in Redis under the subject's key.
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr, Password: redisPassword})
	defer rc.Close()
	if n, err := rc.Exists(ctx, "rate:"+redisKeyPrefix+"alice").Result(); err != nil || n != 1 {
		t.Errorf("EXISTS alice's budget: %d, %v", n, err)
	}
	h1.checkNoSecrets(t, redisPassword)
	h2.checkNoSecrets(t, redisPassword)
}

// TestRedisDownAndBack: Redis killed mid-run: Allow keeps answering from
// the local budget, quickly, and the metrics say so; Redis back: used
// again within the retry interval.
func TestRedisDownAndBack(t *testing.T) {
	rs := testenv.StartRedis(t, redisPassword)
	h := newHarness()
	cfg := redisConfig(rs.URL)
	cfg.PerSubject.Rate, cfg.PerSubject.Burst = 1, 3
	l := newLimiter(t, cfg, fastOpts(h))
	ctx := context.Background()
	for range 3 {
		if ok, _ := l.Allow(ctx, "s", "alice"); !ok {
			t.Fatal("refused within the burst")
		}
	}
	if ok, _ := l.Allow(ctx, "s", "alice"); ok {
		t.Fatal("allowed past the burst")
	}

	rs.Kill()
	start := time.Now()
	ok, _ := l.Allow(ctx, "s", "alice") // fails over: the local bucket is fresh
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("the first call with Redis down took %v", d)
	}
	if !ok {
		t.Error("local fallback refused a fresh subject")
	}
	if got := testutil.ToFloat64(h.m.redisUp); got != 0 {
		t.Errorf("redis_up = %v with Redis killed", got)
	}
	// With the circuit open, calls do not wait for Redis at all, and the
	// local budget is enforced.
	start = time.Now()
	allowed := 0
	for range 20 {
		if ok, _ := l.Allow(ctx, "s", "alice"); ok {
			allowed++
		}
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("20 calls with Redis down took %v", d)
	}
	if allowed != 2 {
		t.Errorf("%d more allowed locally, want 2 (burst 3)", allowed)
	}
	if got := testutil.ToFloat64(h.m.fallbacks); got != 21 {
		t.Errorf("fallbacks = %v, want 21", got)
	}
	if h.logs.FilterMessage("limits: Redis failed; limiting locally until it answers again").Len() != 1 {
		t.Errorf("the failover is not logged once: %v", h.logs.All())
	}

	rs.Start() // empty again: no budget spent
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(h.m.redisUp) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("redis_up never came back to 1")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := testutil.ToFloat64(h.m.fallbacks)
	allowed = 0
	for range 5 {
		if ok, _ := l.Allow(ctx, "s", "alice"); ok {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("%d of 5 allowed with Redis back, want 3 (its fresh budget)", allowed)
	}
	if got := testutil.ToFloat64(h.m.fallbacks); got != before {
		t.Errorf("fallbacks went from %v to %v with Redis back", before, got)
	}
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr, Password: redisPassword})
	defer rc.Close()
	if n, _ := rc.Exists(ctx, "rate:"+redisKeyPrefix+"alice").Result(); n != 1 {
		t.Error("the budget is not in Redis after it came back")
	}
	h.checkNoSecrets(t, redisPassword)
}

// TestRedisUnreachableAtStart: the edge starts anyway, limiting locally.
func TestRedisUnreachableAtStart(t *testing.T) {
	h := newHarness()
	port := testenv.FreePort(t)
	url := "redis://:" + redisPassword + "@127.0.0.1:" + itoa(port) + "/0"
	l := newLimiter(t, redisConfig(url), fastOpts(h))
	start := time.Now()
	for range 10 {
		if ok, _ := l.Allow(context.Background(), "s", "alice"); !ok {
			t.Error("refused within the local burst")
		}
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("10 calls took %v", d)
	}
	if testutil.ToFloat64(h.m.redisUp) != 0 || testutil.ToFloat64(h.m.fallbacks) != 10 {
		t.Errorf("redis_up %v, fallbacks %v", testutil.ToFloat64(h.m.redisUp), testutil.ToFloat64(h.m.fallbacks))
	}
	if h.logs.Len() == 0 {
		t.Error("an unreachable Redis at start is not logged")
	}
	h.checkNoSecrets(t, redisPassword)
}

// TestRedisWrongPassword: refused by Redis counts as down, not as a
// failure of requests, and the password is not logged.
func TestRedisWrongPassword(t *testing.T) {
	rs := testenv.StartRedis(t, redisPassword)
	h := newHarness()
	url := "redis://:wrong-" + redisPassword + "@" + rs.Addr + "/0"
	l := newLimiter(t, redisConfig(url), fastOpts(h))
	if ok, _ := l.Allow(context.Background(), "s", "alice"); !ok {
		t.Error("refused")
	}
	if testutil.ToFloat64(h.m.redisUp) != 0 {
		t.Error("redis_up = 1 with a wrong password")
	}
	h.checkNoSecrets(t, redisPassword)
}

func itoa(i int) string {
	return string(appendInt(nil, i))
}

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

func BenchmarkRedisAllow(b *testing.B) {
	rs := testenv.StartRedis(b, "")
	l := newLimiter(b, Config{PerSubject: PerSubject{Rate: 1e6, Burst: 1e6}, Redis: rs.URL}, Options{RedisTimeout: time.Second})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := l.Allow(ctx, "s", "annotator-17"); !ok {
			b.Fatal("refused")
		}
	}
}

// TestRedisStalled: a Redis that hangs (SIGSTOP) costs one request at most
// RedisTimeout, then none; when it resumes it is used again.
func TestRedisStalled(t *testing.T) {
	rs := testenv.StartRedis(t, redisPassword)
	h := newHarness()
	l := newLimiter(t, redisConfig(rs.URL), fastOpts(h))
	ctx := context.Background()
	if ok, _ := l.Allow(ctx, "s", "alice"); !ok {
		t.Fatal("refused")
	}
	rs.Pause()
	start := time.Now()
	if ok, _ := l.Allow(ctx, "s", "alice"); !ok {
		t.Error("refused with Redis stalled")
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 400*time.Millisecond {
		t.Errorf("the first call on a stalled Redis took %v, want about the 100ms timeout", d)
	}
	start = time.Now()
	for range 5 {
		l.Allow(ctx, "s", "alice")
	}
	if d := time.Since(start); d > 20*time.Millisecond {
		t.Errorf("later calls took %v: the circuit did not open", d)
	}
	if testutil.ToFloat64(h.m.redisUp) != 0 {
		t.Error("redis_up = 1 with Redis stalled")
	}
	rs.Resume()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(h.m.redisUp) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("redis_up never came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := testutil.ToFloat64(h.m.fallbacks)
	l.Allow(ctx, "s", "alice")
	if testutil.ToFloat64(h.m.fallbacks) != before {
		t.Error("still falling back after Redis resumed")
	}
	h.checkNoSecrets(t, redisPassword)
}
