package limit

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// quietRedisLogs turns off go-redis's own logger, a process-wide one that
// writes plain-text lines ("redis: … failed to dial …") straight to
// stderr, once a second while Redis is down: they would break the edge's
// JSON log. The limiter logs what matters itself, once per change, the
// password scrubbed.
var quietRedisLogs = sync.OnceFunc(func() { redis.SetLogger(discardLogger{}) })

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}
