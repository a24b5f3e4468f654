//go:build !unix

package signer

import "errors"

func mkfifo(string) error { return errors.New("no FIFOs") }
