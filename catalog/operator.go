package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/validation"
)

// rewardEvent is one line of a reward's trail (catalog_reward_events).
type rewardEvent struct {
	RewardID   int64
	Kind       string
	Actor      string
	StockDelta *int64
	StockAfter *int64
	Reason     string
	Detail     map[string]any
}

func addEvent(tx *gorm.DB, e rewardEvent, now time.Time) error {
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	if err := tx.Exec(`INSERT INTO catalog_reward_events (reward_id, kind, actor, stock_delta, stock_after, reason, detail, at)
		VALUES (?, ?, ?, ?, ?, ?, ?::jsonb, ?)`, e.RewardID, e.Kind, e.Actor, e.StockDelta, e.StockAfter, e.Reason,
		mustJSON(e.Detail), now).Error; err != nil {
		return fmt.Errorf("record %s of reward %d: %w", e.Kind, e.RewardID, err)
	}
	return nil
}

// Event is one change to a reward made by its owner or by staff: created,
// updated, stock_set, stock_adjusted, vouchers_uploaded (counts, never
// codes), moderated, retired, image_set. StockDelta and StockAfter are set on
// stock changes (StockAfter nil: unlimited).
type Event struct {
	ID         int64          `json:"id"`
	RewardID   int64          `json:"reward_id"`
	Kind       string         `json:"kind"`
	Actor      string         `json:"actor"`
	StockDelta *int64         `json:"stock_delta,omitempty"`
	StockAfter *int64         `json:"stock_after,omitempty"`
	Reason     string         `json:"reason,omitempty"`
	Detail     map[string]any `json:"detail"`
	At         time.Time      `json:"at"`
}

// Events returns a reward's trail, newest first (at most limit, 1 to 200).
// Errors: ErrRewardNotFound.
func (s *Service) Events(ctx context.Context, rewardID int64, limit int) ([]Event, error) {
	db := s.db.WithContext(ctx)
	if _, err := getReward(db, rewardID, false); err != nil {
		return nil, err
	}
	var rows []struct {
		ID         int64
		RewardID   int64
		Kind       string
		Actor      string
		StockDelta *int64
		StockAfter *int64
		Reason     string
		DetailText string
		At         time.Time
	}
	if err := db.Raw(`SELECT id, reward_id, kind, actor, stock_delta, stock_after, reason, detail::text AS detail_text, at
		FROM catalog_reward_events WHERE reward_id = ? ORDER BY id DESC LIMIT ?`, rewardID, pageLimit(limit)).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("events of reward %d: %w", rewardID, err)
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = Event{ID: r.ID, RewardID: r.RewardID, Kind: r.Kind, Actor: r.Actor, StockDelta: r.StockDelta,
			StockAfter: r.StockAfter, Reason: r.Reason, Detail: map[string]any{}, At: r.At.UTC()}
		_ = unmarshalObject(r.DetailText, &out[i].Detail)
	}
	return out, nil
}

// StockChange sets a counted stock (Set: the new total of units, the
// remaining stock moves by the difference) or adjusts it (Adjust: units added,
// or taken out when negative), with the reason for the trail. Unlimited
// (Set nil and Unlimited true) drops counting.
type StockChange struct {
	Set       *int64
	Adjust    *int64
	Unlimited bool
	Reason    string
}

// ChangeStock sets or adjusts an operator reward's stock and records it with
// the actor and reason. An adjustment is one conditional UPDATE, so it
// composes with concurrent orders: it never takes the remaining stock below
// zero (a validation error) and never loses an order's decrement. Errors:
// ErrRewardNotFound (also a partner's reward), ErrRewardRetired,
// *validation.Error.
func (s *Service) ChangeStock(ctx context.Context, actor string, id int64, c StockChange) (Reward, error) {
	var v validation.Error
	c.Reason = strings.TrimSpace(c.Reason)
	n := 0
	for _, set := range []bool{c.Set != nil, c.Adjust != nil, c.Unlimited} {
		if set {
			n++
		}
	}
	v.Check(n == 1, "body", "set exactly one of set, adjust or unlimited")
	v.Check(c.Set == nil || (*c.Set >= 0 && *c.Set <= maxPoints), "set", "must be 0 to 1,000,000,000")
	v.Check(c.Adjust == nil || (*c.Adjust != 0 && *c.Adjust >= -maxPoints && *c.Adjust <= maxPoints), "adjust",
		"must be a non-zero number of units (negative takes units out)")
	v.Check(c.Reason != "" && len(c.Reason) <= 500, "reason", "is required (at most 500 characters)")
	if err := v.Err(); err != nil {
		return Reward{}, err
	}
	var out Reward
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The reward row lock orders this change after any order holding
		// the row (orders lock the member, then the reward: no cycle).
		cur, err := ownedReward(tx, 0, id)
		if err != nil {
			return err
		}
		now := s.clock()
		ev := rewardEvent{RewardID: id, Actor: actor, Reason: c.Reason}
		switch {
		case c.Unlimited:
			ev.Kind = "stock_set"
			err = tx.Exec(`UPDATE catalog_rewards SET stock_total = NULL, stock_remaining = NULL, updated_at = ? WHERE id = ?`, now, id).Error
		case c.Set != nil:
			ev.Kind = "stock_set"
			after := *c.Set
			if cur.StockTotal != nil {
				after = *cur.StockRemaining + (*c.Set - *cur.StockTotal)
				if after < 0 {
					return validation.New("set", fmt.Sprintf("would leave %d units remaining: %d are already ordered",
						after, *cur.StockTotal-*cur.StockRemaining))
				}
				d := after - *cur.StockRemaining
				ev.StockDelta = &d
			}
			ev.StockAfter = &after
			err = tx.Exec(`UPDATE catalog_rewards SET stock_total = ?, stock_remaining = ?, updated_at = ? WHERE id = ?`,
				*c.Set, after, now, id).Error
		default:
			ev.Kind, ev.StockDelta = "stock_adjusted", c.Adjust
			if cur.StockTotal == nil {
				return validation.New("adjust", "the reward has unlimited stock: set a number of units first")
			}
			var after []int64
			err = tx.Raw(`UPDATE catalog_rewards SET stock_total = stock_total + ?, stock_remaining = stock_remaining + ?,
				updated_at = ? WHERE id = ? AND stock_remaining + ? >= 0 RETURNING stock_remaining`,
				*c.Adjust, *c.Adjust, now, id, *c.Adjust).Scan(&after).Error
			if err == nil && len(after) == 0 {
				return validation.New("adjust", fmt.Sprintf("would take out more than the %d units remaining", *cur.StockRemaining))
			}
			if err == nil {
				ev.StockAfter = &after[0]
			}
		}
		if err != nil {
			return fmt.Errorf("change stock: %w", err)
		}
		if err := addEvent(tx, ev, now); err != nil {
			return err
		}
		out, err = getReward(tx, id, false)
		return err
	})
	if err != nil {
		return Reward{}, fmt.Errorf("stock of reward %d: %w", id, err)
	}
	return out, nil
}

// RetireReward withdraws an operator reward for good: it is inactive, no
// longer listed or orderable, and cannot be edited; its orders and history
// stay. Retiring a retired reward returns it. Errors: ErrRewardNotFound,
// *validation.Error (reason).
func (s *Service) RetireReward(ctx context.Context, actor string, id int64, reason string) (Reward, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 500 {
		return Reward{}, validation.New("reason", "is required (at most 500 characters)")
	}
	var out Reward
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := getReward(tx, id, true)
		if err != nil {
			return err
		}
		if cur.PartnerID != 0 {
			return fmt.Errorf("reward %d: %w", id, ErrRewardNotFound)
		}
		if cur.RetiredAt != nil {
			out = cur
			return nil
		}
		now := s.clock()
		if err := tx.Exec(`UPDATE catalog_rewards SET status = 'inactive', retired_at = ?, updated_at = ? WHERE id = ?`,
			now, now, id).Error; err != nil {
			return fmt.Errorf("retire: %w", err)
		}
		if err := addEvent(tx, rewardEvent{RewardID: id, Kind: "retired", Actor: actor, Reason: reason}, now); err != nil {
			return err
		}
		out, err = getReward(tx, id, false)
		return err
	})
	if err != nil {
		return Reward{}, fmt.Errorf("retire reward %d: %w", id, err)
	}
	return out, nil
}

// MaxImageBytes is the largest reward image accepted.
const MaxImageBytes = 1 << 20

// ImageTypes are the image types a reward may show, by what the bytes are
// (http.DetectContentType), not by what the uploader claims. SVG is not
// among them: it can carry script.
var ImageTypes = []string{"image/png", "image/jpeg", "image/webp", "image/gif"}

// Image is a reward's picture.
type Image struct {
	ContentType string
	Data        []byte
	SHA256      string
	UploadedAt  time.Time
}

// SetImage stores (or replaces) any reward's image. The type is sniffed from
// the bytes and must be one of ImageTypes; a declared type (the upload's
// Content-Type, may be empty) must agree with it. Errors: ErrRewardNotFound,
// *validation.Error naming "image".
func (s *Service) SetImage(ctx context.Context, actor string, id int64, declared string, data []byte) (Reward, error) {
	ct, err := checkImage(declared, data)
	if err != nil {
		return Reward{}, err
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	var out Reward
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := getReward(tx, id, true); err != nil {
			return err
		}
		now := s.clock()
		if err := tx.Exec(`INSERT INTO catalog_reward_images (reward_id, content_type, data, sha256, uploaded_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (reward_id) DO UPDATE
			SET content_type = EXCLUDED.content_type, data = EXCLUDED.data, sha256 = EXCLUDED.sha256, uploaded_at = EXCLUDED.uploaded_at`,
			id, ct, data, digest, now).Error; err != nil {
			return fmt.Errorf("store image: %w", err)
		}
		if err := tx.Exec(`UPDATE catalog_rewards SET updated_at = ? WHERE id = ?`, now, id).Error; err != nil {
			return err
		}
		if err := addEvent(tx, rewardEvent{RewardID: id, Kind: "image_set", Actor: actor,
			Detail: map[string]any{"content_type": ct, "bytes": len(data), "sha256": digest}}, now); err != nil {
			return err
		}
		out, err = getReward(tx, id, false)
		return err
	})
	if err != nil {
		return Reward{}, fmt.Errorf("image of reward %d: %w", id, err)
	}
	return out, nil
}

func checkImage(declared string, data []byte) (string, error) {
	if len(data) == 0 {
		return "", validation.New("image", "is required (a PNG, JPEG, WebP or GIF file)")
	}
	if len(data) > MaxImageBytes {
		return "", validation.New("image", fmt.Sprintf("is %d bytes; at most %d (1 MiB)", len(data), MaxImageBytes))
	}
	ct := http.DetectContentType(data)
	ok := false
	for _, t := range ImageTypes {
		ok = ok || ct == t
	}
	if !ok {
		return "", validation.New("image", "must be a PNG, JPEG, WebP or GIF image (the file is "+ct+")")
	}
	if d := strings.ToLower(strings.TrimSpace(strings.Split(declared, ";")[0])); d != "" && d != "application/octet-stream" && d != ct {
		return "", validation.New("image", fmt.Sprintf("is declared %s but is %s", d, ct))
	}
	return ct, nil
}

// Image returns a reward's image. Images of every reward are public (the
// member catalog shows them). Errors: ErrRewardNotFound (no such reward, or
// no image).
func (s *Service) Image(ctx context.Context, id int64) (Image, error) {
	var rows []Image
	if err := s.db.WithContext(ctx).Raw(`SELECT content_type, data, sha256, uploaded_at FROM catalog_reward_images
		WHERE reward_id = ?`, id).Scan(&rows).Error; err != nil {
		return Image{}, fmt.Errorf("image of reward %d: %w", id, err)
	}
	if len(rows) == 0 {
		return Image{}, fmt.Errorf("image of reward %d: %w", id, ErrRewardNotFound)
	}
	return rows[0], nil
}
