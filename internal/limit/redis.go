package limit

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/zap"
)

// redisKeyPrefix names the budgets in Redis (redis_rate adds "rate:").
const redisKeyPrefix = "edge:subject:"

// redisBudget keeps the request budgets in Redis, with a circuit: after a
// failed call every request is decided locally at once, and one goroutine
// pings Redis every RedisRetry until it answers.
type redisBudget struct {
	client   *redis.Client
	rl       *redis_rate.Limiter
	limit    redis_rate.Limit
	timeout  time.Duration
	retry    time.Duration
	password string // only to scrub it from error text
	up       atomic.Bool
	down     chan struct{} // a token: a failed call wakes the prober
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	m        *Metrics
	log      *zap.Logger
}

func newRedisBudget(cfg Config, opts Options, m *Metrics, log *zap.Logger) (*redisBudget, error) {
	o, err := redis.ParseURL(cfg.Redis)
	if err != nil {
		return nil, errors.New("limits.redis: is not a valid Redis URL")
	}
	quietRedisLogs()
	timeout := opts.RedisTimeout
	if timeout <= 0 {
		timeout = 50 * time.Millisecond
	}
	retry := opts.RedisRetry
	if retry <= 0 {
		retry = time.Second
	}
	// Short everything, no retries: a slow Redis must not slow requests;
	// the local budget answers instead.
	o.DialTimeout = timeout
	o.ReadTimeout = timeout
	o.WriteTimeout = timeout
	o.PoolTimeout = timeout
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	r := &redisBudget{
		client:   redis.NewClient(o),
		limit:    gcraLimit(cfg.PerSubject),
		timeout:  timeout,
		retry:    retry,
		password: o.Password,
		down:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		m:        m,
		log:      log,
	}
	r.rl = redis_rate.NewLimiter(r.client)
	ctx, cancel := context.WithTimeout(context.Background(), 4*timeout)
	err = r.client.Ping(ctx).Err()
	cancel()
	if err != nil {
		r.log.Warn("limits: Redis unreachable at start; each replica limits on its own until it answers", zap.String("error", r.scrub(err)))
		r.setUp(false)
		r.down <- struct{}{}
	} else {
		r.setUp(true)
	}
	go r.probe()
	return r, nil
}

// gcraLimit expresses rate and burst for redis_rate, whose rate is a whole
// number of requests per period: a whole rate per second, or one request
// per 1/rate seconds.
func gcraLimit(p PerSubject) redis_rate.Limit {
	if p.Rate == math.Trunc(p.Rate) {
		return redis_rate.Limit{Rate: int(p.Rate), Burst: p.Burst, Period: time.Second}
	}
	return redis_rate.Limit{Rate: 1, Burst: p.Burst, Period: time.Duration(float64(time.Second) / p.Rate)}
}

func (r *redisBudget) setUp(up bool) {
	r.up.Store(up)
	if up {
		r.m.redisUp.Set(1)
	} else {
		r.m.redisUp.Set(0)
	}
}

// allow asks Redis; an error means "decide locally".
func (r *redisBudget) allow(ctx context.Context, subject string) (bool, time.Duration, error) {
	if !r.up.Load() {
		return false, 0, errDown
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	res, err := r.rl.Allow(cctx, redisKeyPrefix+subject, r.limit)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			// The client went away: not Redis's fault.
			return false, 0, err
		}
		if r.up.CompareAndSwap(true, false) {
			r.m.redisUp.Set(0)
			r.log.Warn("limits: Redis failed; limiting locally until it answers again", zap.String("error", r.scrub(err)))
			select {
			case r.down <- struct{}{}:
			default:
			}
		}
		return false, 0, err
	}
	if res.Allowed > 0 {
		return true, 0, nil
	}
	return false, max(res.RetryAfter, time.Millisecond), nil
}

var errDown = errors.New("redis down")

// probe pings Redis every retry while it is down.
func (r *redisBudget) probe() {
	defer close(r.done)
	for {
		select {
		case <-r.down:
		case <-r.stop:
			return
		}
		for !r.up.Load() {
			select {
			case <-time.After(r.retry):
			case <-r.stop:
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 4*r.timeout)
			err := r.client.Ping(ctx).Err()
			cancel()
			if err == nil {
				r.setUp(true)
				r.log.Info("limits: Redis answers again; budgets are shared across replicas")
			}
		}
	}
}

// scrub is an error's text without the password, should a library ever
// quote it.
func (r *redisBudget) scrub(err error) string {
	s := err.Error()
	if r.password != "" {
		s = strings.ReplaceAll(s, r.password, "REDACTED")
	}
	return s
}

func (r *redisBudget) close() error {
	r.once.Do(func() { close(r.stop) })
	<-r.done
	return r.client.Close()
}
