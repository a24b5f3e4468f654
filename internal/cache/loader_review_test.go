package cache

import (
	"context"
	"testing"
	"time"
)

// R2: RemoveFunc does not see loads in flight: one that started before the
// purge inserts its (purged-source) value after RemoveFunc returned.
func TestRemoveFuncRacesInsert(t *testing.T) {
	l, _ := NewLoader[string, string](100)
	started, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		l.Get(context.Background(), "old-src/k", fixed(t0), func(context.Context) (string, time.Time, error) {
			close(started)
			<-release
			return "signed with the old source", t0.Add(time.Hour), nil
		})
	}()
	<-started
	l.RemoveFunc(func(k string) bool { return k[:7] == "old-src" })
	close(release)
	<-done
	if v, _, ok := l.Cached("old-src/k", t0); ok {
		t.Errorf("after RemoveFunc returned, the purged source's key is cached: %q", v)
	}
}

// R3 (sanity): a panicking load wakes its waiters with an error, is not
// cached, and the next Get loads again.
func TestLoadPanic(t *testing.T) {
	l, _ := NewLoader[string, string](100)
	in, release := make(chan struct{}), make(chan struct{})
	go func() {
		defer func() { recover() }()
		l.Get(context.Background(), "k", fixed(t0), func(context.Context) (string, time.Time, error) {
			close(in)
			<-release
			panic("boom")
		})
	}()
	<-in
	errc := make(chan error)
	go func() {
		_, _, _, err := l.Get(context.Background(), "k", fixed(t0), func(context.Context) (string, time.Time, error) {
			return "second", t0.Add(time.Hour), nil
		})
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	close(release)
	select {
	case err := <-errc:
		if err == nil {
			// It may have come late and loaded itself: acceptable.
			t.Log("waiter loaded after the panic")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter never woken after a panic")
	}
	v, _, _, err := l.Get(context.Background(), "k", fixed(t0), func(context.Context) (string, time.Time, error) {
		return "third", t0.Add(time.Hour), nil
	})
	if err != nil || (v != "third" && v != "second") {
		t.Fatalf("after the panic: %q, %v", v, err)
	}
}

// R4 (sanity): the leader's caller going away does not fail a waiter.
func TestLeaderCancelled(t *testing.T) {
	l, _ := NewLoader[string, string](100)
	ctx, cancel := context.WithCancel(context.Background())
	in, release := make(chan struct{}), make(chan struct{})
	go l.Get(ctx, "k", fixed(t0), func(lctx context.Context) (string, time.Time, error) {
		close(in)
		<-release
		if err := lctx.Err(); err != nil {
			return "", time.Time{}, err
		}
		return "v", t0.Add(time.Hour), nil
	})
	<-in
	errc := make(chan error)
	go func() {
		_, _, _, err := l.Get(context.Background(), "k", fixed(t0), nil)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("waiter failed with the leader's cancellation: %v", err)
	}
}
