package web

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
)

// The console's catalog pages: every reward with its moderation, the
// operator's own rewards created and edited, their stock, voucher codes and
// image, and each reward's trail. Each form calls the service method of its
// admin API route (POST/PUT /v1/admin/catalog/rewards[/{id}], .../stock,
// .../vouchers, .../image, .../retire, .../moderation).

// operatorCategories are the categories an operator reward may take (no
// charity donations: those need a charity partner).
var operatorCategories = []catalog.Category{catalog.CategoryVoucher, catalog.CategoryMerchandise,
	catalog.CategoryExperience, catalog.CategoryDining, catalog.CategoryHotelNight, catalog.CategoryFlight}

// rewardFieldAliases maps the catalog's field names to the form's inputs.
var rewardFieldAliases = map[string]string{"value.minor": "value", "value.currency": "currency",
	"stock_total": "stock_total", "body": "reason"}

// consoleCatalog is GET /console/catalog: every reward (?owner=operator or
// partner narrows it), the form to create an operator reward.
func (s *Server) consoleCatalog(c *gin.Context) {
	f := catalogForm{formState: newFormState()}
	f.set("reward", "currency", "EUR")
	f.set("reward", "category", string(catalog.CategoryVoucher))
	s.catalogPage(c, http.StatusOK, f)
}

// catalogForm is the catalog page's form state and the refusal's sentence.
type catalogForm struct {
	formState
	err string
}

func (s *Server) catalogPage(c *gin.Context, status int, f catalogForm) {
	owner := catalog.Owner(c.Query("owner"))
	if owner != catalog.OwnerOperator && owner != catalog.OwnerPartner {
		owner = ""
	}
	list, next, err := s.deps.Catalog.Rewards(c.Request.Context(), catalog.RewardQuery{Owner: owner,
		Cursor: c.Query("cursor"), Limit: 100})
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	data := gin.H{"Rewards": list, "Partners": s.partnerNames(c), "Owner": string(owner),
		"Categories":   operatorCategories,
		"Visibilities": []catalog.Visibility{catalog.VisibilityVisible, catalog.VisibilityHidden, catalog.VisibilitySuspended}}
	if next != "" {
		data["Next"] = "/console/catalog?owner=" + string(owner) + "&cursor=" + next
	}
	page := consolePage("catalog", "Catalog", formData(f.formState, data))
	if f.Open != "" {
		page.Error = f.err
	}
	s.renderStatus(c, status, "console_catalog", page)
}

// rewardForm reads the reward form (create and edit); the value is in major
// units of its currency, stock empty means unlimited.
func rewardForm(c *gin.Context) (catalog.RewardInput, error) {
	var v validation.Error
	currency := strings.ToUpper(strings.TrimSpace(c.PostForm("currency")))
	in := catalog.RewardInput{Title: c.PostForm("title"), Description: c.PostForm("description"),
		Category: catalog.Category(c.PostForm("category")), Fulfilment: catalog.FulfilmentInstant,
		Value: money.Money{Currency: currency}, Status: catalog.Status(c.PostForm("status"))}
	in.PricePoints = formInt(c.PostForm("price_points"), "price_points", &v)
	v.Check(in.PricePoints > 0, "price_points", "is required")
	if len(currency) == 3 {
		in.Value.Minor = formMinor(c.PostForm("value"), currency, "value", &v)
	}
	if raw := strings.TrimSpace(c.PostForm("stock_total")); raw != "" {
		n := formInt(raw, "stock_total", &v)
		in.StockTotal = &n
	}
	in.PerMemberLimit = int(formInt(c.PostForm("per_member_limit"), "per_member_limit", &v))
	for _, name := range []string{"valid_from", "valid_until"} {
		raw := strings.TrimSpace(c.PostForm(name))
		if raw == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, raw)
		v.Check(err == nil, name, "must be a date (YYYY-MM-DD)")
		if err == nil && name == "valid_from" {
			in.ValidFrom = &t
		} else if err == nil {
			in.ValidUntil = &t
		}
	}
	return in, v.Err()
}

// consoleCreateReward is POST /console/catalog: a new operator reward
// (POST /v1/admin/catalog/rewards).
func (s *Server) consoleCreateReward(c *gin.Context) {
	in, err := rewardForm(c)
	var r catalog.Reward
	if err == nil {
		r, err = s.deps.Catalog.CreateOperatorReward(c.Request.Context(), staffActor(staff(c)), in)
	}
	s.audit(c, "reward.create", "reward:"+strconv.FormatInt(r.ID, 10), in.Title, err)
	if err != nil {
		f := catalogForm{formState: newFormState(), err: s.friendly(c, err)}
		f.refused("reward", c.Request.PostForm, err, rewardFieldAliases)
		s.catalogPage(c, refusedStatus(err), f)
		return
	}
	okBack(c, fmt.Sprintf("/console/catalog/%d", r.ID), fmt.Sprintf("Reward %d created. Upload voucher codes so members can order it.", r.ID))
}

// consoleModerate is POST /console/catalog/{id}/moderation: approve
// (visible), hide or reject (suspend) with a reason, feature
// (POST /v1/admin/catalog/rewards/{id}/moderation).
func (s *Server) consoleModerate(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	vis := catalog.Visibility(c.PostForm("visibility"))
	featured := c.PostForm("featured") == "on"
	reason := c.PostForm("reason")
	_, err := s.deps.Catalog.Moderate(c.Request.Context(), staffActor(staff(c)), id,
		catalog.Moderation{Visibility: &vis, Featured: &featured, Reason: reason})
	s.audit(c, "reward.moderate", "reward:"+c.Param("id"), fmt.Sprintf("visibility %s, featured %t: %s", vis, featured, reason), err)
	back := "/console/catalog"
	if c.PostForm("back") == "reward" {
		back = fmt.Sprintf("/console/catalog/%d", id)
	}
	if err != nil {
		s.failBack(c, back, err)
		return
	}
	okBack(c, back, fmt.Sprintf("Reward %d is %s.", id, vis))
}

// consoleReward is GET /console/catalog/{id}: one reward, its forms (the
// operator's own) and its trail.
func (s *Server) consoleReward(c *gin.Context) {
	s.rewardPage(c, http.StatusOK, "", nil, nil)
}

func (s *Server) rewardPage(c *gin.Context, status int, form string, posted url.Values, err error) {
	ctx := c.Request.Context()
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	r, lerr := s.deps.Catalog.Reward(ctx, id)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	events, lerr := s.deps.Catalog.Events(ctx, id, 50)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	f := newFormState()
	f.set("reward", "title", r.Title)
	f.set("reward", "description", r.Description)
	f.set("reward", "category", string(r.Category))
	f.set("reward", "price_points", strconv.FormatInt(r.PricePoints, 10))
	f.set("reward", "value", majorUnits(r.Value.Minor, r.Value.Currency))
	f.set("reward", "currency", r.Value.Currency)
	if r.StockTotal != nil {
		f.set("reward", "stock_total", strconv.FormatInt(*r.StockTotal, 10))
	}
	f.set("reward", "per_member_limit", strconv.Itoa(r.PerMemberLimit))
	f.set("reward", "status", string(r.Status))
	if r.ValidFrom != nil {
		f.set("reward", "valid_from", r.ValidFrom.Format(time.DateOnly))
	}
	if r.ValidUntil != nil {
		f.set("reward", "valid_until", r.ValidUntil.Format(time.DateOnly))
	}
	if form != "" {
		f.refused(form, posted, err, rewardFieldAliases)
	}
	page := consolePage("catalog", "Reward "+strconv.FormatInt(r.ID, 10), formData(f, gin.H{"Reward": r, "Events": events,
		"Partners": s.partnerNames(c), "Categories": operatorCategories, "ImageTypes": strings.Join(catalog.ImageTypes, ","),
		"Visibilities": []catalog.Visibility{catalog.VisibilityVisible, catalog.VisibilityHidden, catalog.VisibilitySuspended}}))
	if err != nil {
		page.Error = s.friendly(c, err)
	}
	s.renderStatus(c, status, "console_reward", page)
}

// consoleUpdateReward is POST /console/catalog/{id}: the operator reward
// replaced (PUT /v1/admin/catalog/rewards/{id}).
func (s *Server) consoleUpdateReward(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	in, err := rewardForm(c)
	if err == nil {
		_, err = s.deps.Catalog.UpdateOperatorReward(c.Request.Context(), staffActor(staff(c)), id, in)
	}
	s.audit(c, "reward.update", "reward:"+c.Param("id"), in.Title, err)
	if err != nil {
		s.rewardPage(c, refusedStatus(err), "reward", c.Request.PostForm, err)
		return
	}
	okBack(c, fmt.Sprintf("/console/catalog/%d", id), "Reward saved.")
}

// consoleChangeStock is POST /console/catalog/{id}/stock: set or adjust
// (POST /v1/admin/catalog/rewards/{id}/stock).
func (s *Server) consoleChangeStock(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	var v validation.Error
	ch := catalog.StockChange{Reason: c.PostForm("reason")}
	n := formInt(c.PostForm("units"), "units", &v)
	switch c.PostForm("mode") {
	case "set":
		ch.Set = &n
	case "adjust":
		ch.Adjust = &n
	case "unlimited":
		ch.Unlimited = true
	default:
		v.Add("mode", "must be set, adjust or unlimited")
	}
	err := v.Err()
	if err == nil {
		_, err = s.deps.Catalog.ChangeStock(c.Request.Context(), staffActor(staff(c)), id, ch)
	}
	s.audit(c, "reward.stock", "reward:"+c.Param("id"), c.PostForm("mode")+" "+c.PostForm("units")+": "+ch.Reason, err)
	if err != nil {
		s.rewardPage(c, refusedStatus(err), "stock", c.Request.PostForm, stockFieldErr(err))
		return
	}
	okBack(c, fmt.Sprintf("/console/catalog/%d#stock", id), "Stock changed.")
}

// stockFieldErr names the form's "units" input where the catalog named
// set or adjust.
func stockFieldErr(err error) error {
	ve, ok := err.(*validation.Error)
	if !ok {
		return err
	}
	out := &validation.Error{}
	for _, fe := range ve.Fields {
		f := fe.Field
		if f == "set" || f == "adjust" {
			f = "units"
		}
		out.Add(f, fe.Message)
	}
	return out
}

// consoleUploadVouchers is POST /console/catalog/{id}/vouchers: a CSV file
// of codes (POST /v1/admin/catalog/rewards/{id}/vouchers). The audit log
// and the flash carry counts, never codes.
func (s *Server) consoleUploadVouchers(c *gin.Context) {
	if err := multipartContentType(c.GetHeader("Content-Type")); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	var codes []string
	fh, err := c.FormFile("file")
	if err != nil {
		err = validation.New("file", "choose a CSV file of voucher codes")
	} else if fh.Size > maxVoucherFile {
		err = validation.New("file", fmt.Sprintf("is larger than %d bytes", maxVoucherFile))
	} else {
		f, oerr := fh.Open()
		if oerr != nil {
			err = oerr
		} else {
			codes, err = voucherCodes(f)
			f.Close()
		}
	}
	var up catalog.VoucherUpload
	if err == nil {
		up, err = s.deps.Catalog.UploadOperatorVouchers(c.Request.Context(), staffActor(staff(c)), id, codes)
	}
	s.audit(c, "reward.vouchers", "reward:"+c.Param("id"), fmt.Sprintf("%d added, %d duplicates", up.Added, up.Duplicates), err)
	if err != nil {
		s.rewardPage(c, refusedStatus(err), "vouchers", url.Values{"file": {""}}, err)
		return
	}
	okBack(c, fmt.Sprintf("/console/catalog/%d#vouchers", id), fmt.Sprintf("%d codes added, %d already in the pool; %d free.",
		up.Added, up.Duplicates, up.Available))
}

// consoleSetRewardImage is POST /console/catalog/{id}/image: an image file
// (PUT /v1/admin/catalog/rewards/{id}/image).
func (s *Server) consoleSetRewardImage(c *gin.Context) {
	if err := multipartContentType(c.GetHeader("Content-Type")); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	var data []byte
	declared := ""
	fh, err := c.FormFile("image")
	if err != nil {
		err = validation.New("image", "choose a PNG, JPEG, WebP or GIF file")
	} else if fh.Size > catalog.MaxImageBytes {
		err = validation.New("image", fmt.Sprintf("is %d bytes; at most %d (1 MiB)", fh.Size, catalog.MaxImageBytes))
	} else {
		declared = fh.Header.Get("Content-Type")
		f, oerr := fh.Open()
		if oerr != nil {
			err = oerr
		} else {
			data, err = io.ReadAll(io.LimitReader(f, catalog.MaxImageBytes+1))
			f.Close()
		}
	}
	if err == nil {
		_, err = s.deps.Catalog.SetImage(c.Request.Context(), staffActor(staff(c)), id, declared, data)
	}
	s.audit(c, "reward.image", "reward:"+c.Param("id"), fmt.Sprintf("%d bytes", len(data)), err)
	if err != nil {
		s.rewardPage(c, refusedStatus(err), "image", url.Values{"image": {""}}, err)
		return
	}
	okBack(c, fmt.Sprintf("/console/catalog/%d", id), "Image saved.")
}

// consoleRetireReward is POST /console/catalog/{id}/retire
// (POST /v1/admin/catalog/rewards/{id}/retire).
func (s *Server) consoleRetireReward(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	_, err := s.deps.Catalog.RetireReward(c.Request.Context(), staffActor(staff(c)), id, c.PostForm("reason"))
	s.audit(c, "reward.retire", "reward:"+c.Param("id"), c.PostForm("reason"), err)
	if err != nil {
		s.rewardPage(c, refusedStatus(err), "retire", c.Request.PostForm, err)
		return
	}
	okBack(c, fmt.Sprintf("/console/catalog/%d", id), "Reward retired: members can no longer order it.")
}
