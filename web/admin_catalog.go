package web

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/internal/validation"
)

// The operator's own rewards (owner "operator"): created, edited, stocked,
// given voucher codes and images, and retired by staff through
// /v1/admin/catalog/rewards. The console's catalog page calls the same
// service methods (web/ui_console_catalog.go).

// adminCreateOperatorReward is POST /v1/admin/catalog/rewards.
func (s *Server) adminCreateOperatorReward(c *gin.Context) {
	var req rewardRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.deps.Catalog.CreateOperatorReward(c.Request.Context(), actor(c), req.input())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, rewardOut(r))
}

// adminGetReward is GET /v1/admin/catalog/rewards/{id}: any reward.
func (s *Server) adminGetReward(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrRewardNotFound)
		return
	}
	r, err := s.deps.Catalog.Reward(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, rewardOut(r))
}

// adminUpdateOperatorReward is PUT /v1/admin/catalog/rewards/{id}.
func (s *Server) adminUpdateOperatorReward(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrRewardNotFound)
		return
	}
	var req rewardRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.deps.Catalog.UpdateOperatorReward(c.Request.Context(), actor(c), id, req.input())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, rewardOut(r))
}

// adminRetireReward is POST /v1/admin/catalog/rewards/{id}/retire.
func (s *Server) adminRetireReward(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrRewardNotFound)
		return
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.deps.Catalog.RetireReward(c.Request.Context(), actor(c), id, req.Reason)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, rewardOut(r))
}

type stockRequest struct {
	Set       *int64 `json:"set"`
	Adjust    *int64 `json:"adjust"`
	Unlimited bool   `json:"unlimited"`
	Reason    string `json:"reason"`
}

// adminChangeStock is POST /v1/admin/catalog/rewards/{id}/stock.
func (s *Server) adminChangeStock(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrRewardNotFound)
		return
	}
	var req stockRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.deps.Catalog.ChangeStock(c.Request.Context(), actor(c), id,
		catalog.StockChange{Set: req.Set, Adjust: req.Adjust, Unlimited: req.Unlimited, Reason: req.Reason})
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, rewardOut(r))
}

// maxVoucherFile bounds a voucher CSV: 10,000 codes of up to 200 characters.
const maxVoucherFile = 10_000*202 + 1024

// adminUploadOperatorVouchers is POST /v1/admin/catalog/rewards/{id}/vouchers:
// a text/csv body, one code per line in the first column (a first line
// "code" is a header). Codes are secrets: they are neither logged nor kept
// in the audit log, which records the counts.
func (s *Server) adminUploadOperatorVouchers(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrRewardNotFound)
		return
	}
	if err := csvContentType(c.GetHeader("Content-Type")); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	codes, err := voucherCodes(http.MaxBytesReader(c.Writer, c.Request.Body, maxVoucherFile))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	up, err := s.deps.Catalog.UploadOperatorVouchers(c.Request.Context(), actor(c), id, codes)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, up)
}

// voucherCodes reads the codes of a voucher CSV: the first column of each
// record; blank lines are skipped and a first record "code" is a header.
func voucherCodes(r io.Reader) ([]string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var codes []string
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return nil, validation.New("file", fmt.Sprintf("is larger than %d bytes", maxVoucherFile))
		case err != nil:
			return nil, validation.New("file", fmt.Sprintf("line %d is not CSV: %v", line, csvReason(err)))
		}
		code := strings.TrimSpace(rec[0])
		if code == "" || (len(codes) == 0 && line == 1 && strings.EqualFold(code, "code")) {
			continue
		}
		codes = append(codes, code)
	}
	if len(codes) == 0 {
		return nil, validation.New("file", "holds no voucher codes (one per line, in the first column)")
	}
	return codes, nil
}

// csvReason is a CSV error without the line's content (a code is a secret).
func csvReason(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return "unreadable"
}

// adminSetRewardImage is PUT /v1/admin/catalog/rewards/{id}/image: the body
// is the image itself (image/png, image/jpeg, image/webp or image/gif, at
// most 1 MiB). The type is checked on the bytes, not only the header.
func (s *Server) adminSetRewardImage(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrRewardNotFound)
		return
	}
	ct := c.GetHeader("Content-Type")
	if mt, _, perr := mime.ParseMediaType(ct); perr != nil || !strings.HasPrefix(mt, "image/") {
		fail(c, s.deps.Log, &headerError{errUnsupportedMediaType, "Content-Type",
			fmt.Sprintf("%q is not an image: the body must be image/png, image/jpeg, image/webp or image/gif", ct)})
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, catalog.MaxImageBytes+1))
	if err != nil && !isMaxBytes(err) {
		fail(c, s.deps.Log, err)
		return
	}
	if isMaxBytes(err) {
		data = make([]byte, catalog.MaxImageBytes+1) // refused by size in the catalog
	}
	r, err := s.deps.Catalog.SetImage(c.Request.Context(), actor(c), id, ct, data)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, rewardOut(r))
}

func isMaxBytes(err error) bool {
	var tooBig *http.MaxBytesError
	return errors.As(err, &tooBig)
}

// adminRewardEvents is GET /v1/admin/catalog/rewards/{id}/events: the
// reward's trail, newest first.
func (s *Server) adminRewardEvents(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrRewardNotFound)
		return
	}
	var v validation.Error
	limit := queryLimit(c, 50, 200, &v)
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, err := s.deps.Catalog.Events(c.Request.Context(), id, limit)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": list})
}

// rewardImage is GET /catalog/images/{id}: a reward's image, public (the
// member catalog shows it). The address carries the image's digest (?v=), so
// it is cached for good; nosniff keeps the checked type.
func (s *Server) rewardImage(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		c.Status(http.StatusNotFound)
		return
	}
	img, err := s.deps.Catalog.Image(c.Request.Context(), id)
	if errors.Is(err, catalog.ErrRewardNotFound) {
		c.Status(http.StatusNotFound)
		return
	}
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	etag := `"` + img.SHA256 + `"`
	c.Header("ETag", etag)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "public, max-age=31536000, immutable")
	if c.GetHeader("If-None-Match") == etag {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, img.ContentType, img.Data)
}
