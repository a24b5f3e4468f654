package testenv

import (
	"context"
	"testing"
	"time"
)

func TestRedisStartKillStart(t *testing.T) {
	r := StartRedis(t, "pw-for-test")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ping(ctx, r.port); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if r.URL != "redis://:pw-for-test@"+r.Addr+"/0" {
		t.Errorf("URL %q", r.URL)
	}
	r.Kill()
	if err := ping(ctx, r.port); err == nil {
		t.Fatal("ping answered after Kill")
	}
	r.Start()
	if err := ping(ctx, r.port); err != nil {
		t.Fatalf("ping after Start: %v", err)
	}
}
