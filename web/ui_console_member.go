package web

import (
	"context"
	"fmt"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/exchange"
)

// The member page's 360° view: beside the profile, balance and ledger
// (consoleMember), the member's tier and progress to the next, lots with
// their expiry, holds, orders, exchanges, consent trail, portal sessions
// and the staff actions recorded on the member. Each is one call to the
// domain that owns it (the audit log is the console's own).

// member360 adds the 360° sections of member id to data. A server built
// without the programme, the catalog or exchange (some tests) leaves their
// sections empty.
func (s *Server) member360(ctx context.Context, id int64, data gin.H) error {
	var err error
	if s.deps.Programme != nil {
		st, err := s.deps.Programme.Status(ctx, id)
		if err != nil {
			return fmt.Errorf("tier: %w", err)
		}
		data["Tier"] = st
		tiers, err := s.deps.Programme.Tiers(ctx)
		if err != nil {
			return fmt.Errorf("tiers: %w", err)
		}
		if next := nextTier(tiers, st); next != nil { // the portal's progress, the same rule
			data["NextTier"] = next
		}
	}
	if data["Lots"], err = s.deps.Ledger.Lots(ctx, id); err != nil {
		return err
	}
	if data["Holds"], err = s.deps.Ledger.MemberHolds(ctx, id, 20); err != nil {
		return err
	}
	if s.deps.Catalog != nil {
		var orders []catalog.Order
		if orders, _, err = s.deps.Catalog.MemberOrders(ctx, id, catalog.OrderQuery{Limit: 20}); err != nil {
			return fmt.Errorf("orders: %w", err)
		}
		data["Orders"] = orders
	}
	if s.deps.Exchange != nil {
		var exchanges []exchange.Exchange
		if exchanges, err = s.deps.Exchange.List(ctx, exchange.Filter{MemberID: id, Limit: 20}); err != nil {
			return fmt.Errorf("exchanges: %w", err)
		}
		data["Exchanges"] = exchanges
	}
	if data["Consent"], err = s.deps.Members.ConsentHistory(ctx, id); err != nil {
		return err
	}
	if data["Sessions"], err = s.deps.Members.Sessions(ctx, id); err != nil {
		return err
	}
	if data["StaffActions"], err = auditQuery(ctx, s.deps.DB, auditFilter{Member: id, Limit: 20}); err != nil {
		return err
	}
	return nil
}
