package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/partners"
)

const staffUsage = `usage: hub staff create --email EMAIL --role admin|finance|support

Creates an operator staff account, such as the first admin of an empty
(migrated) database. The password is never taken from the command line: it is
prompted for (twice, without echo) on a terminal, or read from the first line
of standard input otherwise:

  hub staff create --email ops@example.com --role admin
  printf '%s\n' "$PASSWORD" | hub staff create --email ops@example.com --role admin
`

// staff runs `hub staff create`.
func (a *app) staff(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return usageError(staffUsage)
	}
	fs := flag.NewFlagSet("staff create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	email := fs.String("email", "", "the staff member's email (their sign-in name)")
	role := fs.String("role", "", "admin, finance or support")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError(err.Error() + "\n\n" + staffUsage)
	}
	if fs.NArg() > 0 || *email == "" || *role == "" {
		return usageError(staffUsage)
	}
	password, err := readPassword(os.Stdin, os.Stderr)
	if err != nil {
		return err
	}
	acc, err := a.accessService(partners.NewService(a.db, time.Now), time.Now)
	if err != nil {
		return err
	}
	st, err := acc.CreateStaff(ctx, *email, password, access.Role(*role))
	var ve *validation.Error
	switch {
	case errors.As(err, &ve):
		msgs := make([]string, len(ve.Fields))
		for i, f := range ve.Fields {
			msgs[i] = f.Field + " " + f.Message
		}
		return fmt.Errorf("staff create: %s", strings.Join(msgs, "; "))
	case errors.Is(err, access.ErrStaffExists):
		return fmt.Errorf("staff create: a staff account with the email %s exists already", *email)
	case err != nil:
		return err
	}
	fmt.Printf("created %s staff account %s (id %d); sign in at %s/console\n", st.Role, st.Email, st.ID, a.cfg.PublicURL)
	return nil
}

// readPassword prompts for the password twice without echo when in is a
// terminal, and otherwise reads its first line (without the line end).
func readPassword(in *os.File, prompt io.Writer) (string, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", errors.New("staff create: no password on standard input (give it as the first line)")
		}
		return line, nil
	}
	ask := func(label string) (string, error) {
		fmt.Fprint(prompt, label)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		return string(b), nil
	}
	first, err := ask("Password (12 to 72 characters): ")
	if err != nil {
		return "", err
	}
	again, err := ask("Password again: ")
	if err != nil {
		return "", err
	}
	if first != again {
		return "", errors.New("staff create: the two passwords differ")
	}
	return first, nil
}
