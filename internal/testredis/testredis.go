// Package testredis gives a test its own Redis keyspace.
//
// Redis has sixteen numbered databases; a test leases one of 1..15 (database 0
// holds the leases) for its lifetime and finds it empty. asynq keeps all its
// keys in the database it is pointed at, so queues, retries and schedules of
// one test are invisible to another. Leases expire on their own if a test
// binary dies, so a crash never wedges later runs.
package testredis

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

const defaultURL = "redis://127.0.0.1:6379/0"

// URL is the Redis server tests use (HUB_TEST_REDIS_URL, or the local default).
func URL() string {
	if u := os.Getenv("HUB_TEST_REDIS_URL"); u != "" {
		return u
	}
	return defaultURL
}

// Keyspace is one leased, empty Redis database.
type Keyspace struct {
	DB  int
	URL string // redis://host:port/DB
}

// Opt is the asynq connection option for the keyspace.
func (k Keyspace) Opt() asynq.RedisClientOpt {
	opt, _ := asynq.ParseRedisURI(k.URL)
	return opt.(asynq.RedisClientOpt)
}

// Client is a go-redis client on the keyspace, closed when the test ends.
func (k Keyspace) Client(t testing.TB) *redis.Client {
	o, err := redis.ParseURL(k.URL)
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// New leases an empty Redis database for the test, waiting up to a minute
// for one to free up. It fails the test when Redis is unreachable.
func New(t testing.TB) Keyspace {
	t.Helper()
	ctx := context.Background()
	opts, err := redis.ParseURL(URL())
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	opts.DB = 0
	ctl := redis.NewClient(opts)
	if err := ctl.Ping(ctx).Err(); err != nil {
		ctl.Close()
		t.Fatalf("cannot reach Redis at %s: %v; run `make services`", URL(), err)
	}
	owner := fmt.Sprintf("%d:%s:%d", os.Getpid(), t.Name(), time.Now().UnixNano())
	deadline := time.Now().Add(time.Minute)
	for {
		for db := 1; db <= 15; db++ {
			key := fmt.Sprintf("hubtest:lease:%d", db)
			ok, err := ctl.SetNX(ctx, key, owner, 10*time.Minute).Result()
			if err != nil {
				ctl.Close()
				t.Fatalf("testredis: lease: %v", err)
			}
			if !ok {
				continue
			}
			o := *opts
			o.DB = db
			c := redis.NewClient(&o)
			if err := c.FlushDB(ctx).Err(); err != nil {
				t.Fatalf("testredis: flush: %v", err)
			}
			c.Close()
			t.Cleanup(func() {
				c := redis.NewClient(&o)
				_ = c.FlushDB(context.Background()).Err()
				c.Close()
				// Release only our own lease.
				if v, _ := ctl.Get(context.Background(), key).Result(); v == owner {
					ctl.Del(context.Background(), key)
				}
				ctl.Close()
			})
			u, _ := url.Parse(URL())
			u.Path = fmt.Sprintf("/%d", db)
			return Keyspace{DB: db, URL: u.String()}
		}
		if time.Now().After(deadline) {
			ctl.Close()
			t.Fatalf("testredis: all 15 Redis databases stayed leased for a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Server is a private redis-server process a test can stop and restart, to
// prove behaviour while Redis is down. It listens on 127.0.0.1 only.
type Server struct {
	Port int
	t    testing.TB
	cmd  *exec.Cmd
}

// StartServer runs a throwaway redis-server on a free loopback port, stopped
// when the test ends.
func StartServer(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not on PATH: %v; run `make services`", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Port: port, t: t}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL of the server's database 0.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

// Start (re)starts the server and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.t.TempDir())
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.Port)})
	defer c.Close()
	// A loaded machine may take seconds to start a process; a minute is for
	// a server that will not start at all.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("redis-server on port %d did not answer within a minute", s.Port)
}

// Stop kills the server (like an outage: no graceful save) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_, _ = s.cmd.Process.Wait()
	s.cmd = nil
}
