package main

import (
	"testing"

	"github.com/hibiken/asynq"

	"github.com/coalitionhub/hub/internal/config"
)

// With Sentinels, asynq and go-redis connect through their failover clients
// to the named primary, keeping the URL's database and password; without,
// to the URL's server.
func TestRedisConnsFollowSentinels(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"HUB_REDIS_URL": "redis://:s3cret@127.0.0.1:16450/3",
			"HUB_REDIS_SENTINELS": "127.0.0.1:26450,127.0.0.1:26451", "HUB_REDIS_MASTER_NAME": "loyalty"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	opt, client, err := redisConns(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	f, ok := opt.(asynq.RedisFailoverClientOpt)
	if !ok || f.MasterName != "loyalty" || len(f.SentinelAddrs) != 2 || f.DB != 3 || f.Password != "s3cret" {
		t.Fatalf("asynq option %#v; want the failover client of primary loyalty, database 3", opt)
	}
	cfg.RedisSentinels = nil
	opt, plain, err := redisConns(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if c, ok := opt.(asynq.RedisClientOpt); !ok || c.Addr != "127.0.0.1:16450" || c.DB != 3 {
		t.Fatalf("asynq option %#v; want the URL's server, database 3", opt)
	}
}
