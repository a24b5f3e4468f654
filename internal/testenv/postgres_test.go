package testenv

import (
	"context"
	"testing"
	"time"
)

func TestPostgresStartStopStart(t *testing.T) {
	pg := StartPostgres(t)
	pg.Exec(t, "CREATE TABLE t (x int)")
	pg.Exec(t, "INSERT INTO t VALUES (42)")
	pid := pg.proc.cmd.Process.Pid
	pg.Stop()
	if !pg.proc.exited() {
		t.Fatalf("postgres pid %d still running after Stop", pid)
	}
	pg.Start()
	c := pg.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var x int
	if err := c.QueryRow(ctx, "SELECT x FROM t").Scan(&x); err != nil || x != 42 {
		t.Fatalf("after restart: got %d, %v; want 42", x, err)
	}
}
