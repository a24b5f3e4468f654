package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/edgeproxy/edge/internal/connections"
)

const connectionsUsage = `usage:
  edge connections schema [-table edge_connections] [-channel edge_connections] [-role edge_reader]
      prints the SQL for connections kept in PostgreSQL: the table, a trigger
      that NOTIFYs the channel on every change, and GRANT SELECT for the
      read-only role the edge connects as
`

// connectionsCmd runs `edge connections SUBCOMMAND`.
func connectionsCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, connectionsUsage)
		return usageError{errors.New("a subcommand is required")}
	}
	switch args[0] {
	case "schema":
		fs := newFlags("connections schema", stderr)
		table := fs.String("table", connections.DefaultTable, "table (connections.postgres.table), optionally schema.table")
		channel := fs.String("channel", connections.DefaultChannel, "LISTEN/NOTIFY channel (connections.postgres.channel)")
		role := fs.String("role", connections.DefaultReaderRole, "read-only role granted SELECT")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{err}
		}
		if fs.NArg() > 0 {
			return usageError{errors.New("schema takes no arguments")}
		}
		sql, err := connections.SchemaSQL(*table, *channel, *role)
		if err != nil {
			return usageError{err}
		}
		_, err = io.WriteString(stdout, sql)
		return err
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, connectionsUsage)
		return nil
	default:
		fmt.Fprint(stderr, connectionsUsage)
		return usageError{fmt.Errorf("unknown subcommand %q", args[0])}
	}
}
